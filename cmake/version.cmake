# Writes OUT, a C++ source defining igan::detail::git_describe(), from `git describe` of SRC; run
# at every build (cmake -P) so the version follows commits, rewriting OUT only when it changes.
execute_process(COMMAND git describe --always --dirty --tags
                WORKING_DIRECTORY "${SRC}"
                OUTPUT_VARIABLE describe OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT describe)
  set(describe "${FALLBACK}")
endif()
set(text "namespace igan::detail {\nconst char* git_describe() { return \"${describe}\"; }\n}\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT "${old}" STREQUAL "${text}")
  file(WRITE "${OUT}" "${text}")
endif()
