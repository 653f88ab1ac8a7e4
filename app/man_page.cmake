# Writes the man page mcp-orchestrator.1 from the binary's own --help texts,
# so the page and the flags cannot drift apart.
#   cmake -DBINARY=<mcp-orchestrator> -DOUTPUT=<file> -DVERSION=<x.y.z> -P man_page.cmake
function(help_text out)
  execute_process(COMMAND ${BINARY} ${ARGN} OUTPUT_VARIABLE text RESULT_VARIABLE rc INPUT_FILE /dev/null)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${BINARY} ${ARGN} exited ${rc}")
  endif()
  # roff: escape backslashes, protect lines that start with a control character.
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

help_text(main --help)
set(page ".TH MCP-ORCHESTRATOR 1 \"\" \"mcp-orchestrator ${VERSION}\" \"User Commands\"
.SH NAME
mcp-orchestrator \\- MCP server that runs builds, test suites and agent CLIs in the background
.SH SYNOPSIS
.nf
mcp-orchestrator [--stdio] [--http ADDR:PORT] [--config FILE] [--state-dir DIR] ...
mcp-orchestrator submit|status|result|cancel|list|logs ...
mcp-orchestrator install claude-code|cursor|vscode|claude-desktop [--scope user|project] [--http] [--write]
.fi
.SH DESCRIPTION
.nf
${main}.fi
")
foreach(sub install submit status result cancel list logs)
  help_text(text ${sub} --help)
  string(TOUPPER "${sub}" title)
  string(APPEND page ".SH ${title}\n.nf\n${text}.fi\n")
endforeach()
string(APPEND page ".SH FILES
.TP
$XDG_CONFIG_HOME/mcp-orchestrator/config.json
the config file (see CONFIG.md in the documentation directory)
.TP
$XDG_STATE_HOME/mcp-orchestrator
the state directory: tasks.db, spool/, logs/, and http.json and http-token while serving HTTP
.SH SEE ALSO
The documentation installed beside this page's package (share/doc/mcp-orchestrator), in particular
editors/ for registering the server with Claude Code, Cursor, VS Code and Claude Desktop.
")
file(WRITE ${OUTPUT} "${page}")
