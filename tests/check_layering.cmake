# Fails when a layer includes a layer above it (STYLE.md, Layering).
set(rules
  "engine:mcp/|tools/|transport/|app/"
  "common:engine/|mcp/|tools/|transport/|app/"
  "transport:mcp/|tools/|engine/|app/"
  "mcp:tools/|engine/|app/"
  "tools:app/|transport/")
set(violations "")
foreach(rule IN LISTS rules)
  string(REPLACE ":" ";" parts "${rule}")
  list(GET parts 0 layer)
  list(GET parts 1 forbidden)
  file(GLOB_RECURSE files ${SOURCE_DIR}/${layer}/*.h ${SOURCE_DIR}/${layer}/*.cpp)
  foreach(file IN LISTS files)
    file(STRINGS ${file} lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"(${forbidden})")
    foreach(line IN LISTS lines)
      string(APPEND violations "${file}: ${line}\n")
    endforeach()
  endforeach()
endforeach()
if(violations)
  message(FATAL_ERROR "Layering violations (a layer includes one above it):\n${violations}")
endif()
message(STATUS "layering ok")
