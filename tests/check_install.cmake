# `cmake --install` into a throwaway prefix, then the installed binary: its
# man page, docs and example config are where GNUInstallDirs puts them, the
# example config loads, and `install` registers the installed path (not the
# build tree's).
#   cmake -DBUILD_DIR=<build> -DWORK=<dir> -DLIBDIR=<CMAKE_INSTALL_LIBDIR> -P check_install.cmake
file(REMOVE_RECURSE ${WORK})
set(prefix ${WORK}/prefix)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${rc}): ${out}${err}")
endif()
set(bin ${prefix}/bin/mcp-orchestrator)
foreach(f bin/mcp-orchestrator libexec/mcp-orchestrator/mcp-orchestrator-keeper
          ${LIBDIR}/mcp-orchestrator/mcp-orchestrator-http.so share/man/man1/mcp-orchestrator.1 share/doc/mcp-orchestrator/README.md
          share/doc/mcp-orchestrator/CONFIG.md share/doc/mcp-orchestrator/editors/claude-code.md
          share/doc/mcp-orchestrator/examples/config.json share/doc/mcp-orchestrator/manifest.json)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "cmake --install did not install ${f}")
  endif()
endforeach()
file(READ ${prefix}/share/man/man1/mcp-orchestrator.1 man)
if(NOT man MATCHES "^\\.TH MCP-ORCHESTRATOR 1" OR NOT man MATCHES "--write")
  message(FATAL_ERROR "the man page lacks its header or the install subcommand's flags")
endif()

# The example config loads: the server starts with it and stops at stdin EOF.
execute_process(COMMAND ${bin} --config ${prefix}/share/doc/mcp-orchestrator/examples/config.json
                        --state-dir ${WORK}/state --log-level error
  INPUT_FILE /dev/null RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 30)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the installed example config does not load (${rc}): ${err}")
endif()
# Without the task keeper tasks could not outlive a crash; the server warns
# (at warn level, which --log-level error hides, so ask again at warn).
execute_process(COMMAND ${bin} --state-dir ${WORK}/state --log-level warn
  INPUT_FILE /dev/null RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 30)
if(err MATCHES "keeper not found")
  message(FATAL_ERROR "the installed binary does not find its task keeper: ${err}")
endif()

# The installed binary finds its HTTP module: the client reaches the network
# (nothing listens on port 9, so it is refused) instead of lacking HTTP.
execute_process(COMMAND ${bin} status --url http://127.0.0.1:9 --token x
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 30)
if(NOT err MATCHES "cannot reach the server" OR err MATCHES "HTTP is not available")
  message(FATAL_ERROR "the installed binary does not load its HTTP module: ${out}${err}")
endif()

# `install cursor --write` from the installed binary names the installed binary.
execute_process(COMMAND ${CMAKE_COMMAND} -E env HOME=${WORK}/home XDG_CONFIG_HOME=${WORK}/home/.config
                        ${bin} install cursor --write
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 30)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "installed `install cursor --write` failed (${rc}): ${out}${err}")
endif()
file(READ ${WORK}/home/.cursor/mcp.json written)
string(JSON command GET "${written}" mcpServers orchestrator command)
file(REAL_PATH ${bin} real_bin)
if(NOT command STREQUAL real_bin)
  message(FATAL_ERROR "the installed binary registered ${command}, not ${real_bin}")
endif()
file(REMOVE_RECURSE ${WORK})
message(STATUS "installed into a throwaway prefix; `install` names ${real_bin}")
