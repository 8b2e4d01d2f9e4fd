# The `docs` target: the API reference (Doxygen, HTML in <build>/docs/html) from the public
# headers and docs/*.md. It fails if Doxygen reports any warning (they are listed in
# <build>/docs/doxygen-warnings.log). Without Doxygen there is no `docs` target.
find_package(Doxygen QUIET)
if(DOXYGEN_FOUND)
  configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_BINARY_DIR}/docs/Doxyfile @ONLY)
  add_custom_target(docs
    COMMAND ${CMAKE_COMMAND} -E rm -f ${PROJECT_BINARY_DIR}/docs/doxygen-warnings.log
    COMMAND ${DOXYGEN_EXECUTABLE} ${PROJECT_BINARY_DIR}/docs/Doxyfile
    COMMAND ${CMAKE_COMMAND} -DLOG=${PROJECT_BINARY_DIR}/docs/doxygen-warnings.log
            -P ${PROJECT_SOURCE_DIR}/cmake/DdtrainCheckWarnings.cmake
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    COMMENT "Doxygen: API reference in ${PROJECT_BINARY_DIR}/docs/html"
    VERBATIM)
  if(DDTRAIN_BUILD_TESTS)
    add_test(NAME docs_doxygen_clean
             COMMAND ${CMAKE_COMMAND} --build ${PROJECT_BINARY_DIR} --target docs)
    set_tests_properties(docs_doxygen_clean PROPERTIES TIMEOUT 300 LABELS docs)
  endif()
else()
  message(STATUS "ddtrain: Doxygen not found, no `docs` target (apt-get install doxygen)")
endif()
