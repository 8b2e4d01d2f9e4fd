# cmake -DLOG=file -P DdtrainCheckWarnings.cmake: fails, printing the file, if it is not empty.
if(EXISTS "${LOG}")
  file(READ "${LOG}" text)
  string(STRIP "${text}" text)
  if(NOT text STREQUAL "")
    message(FATAL_ERROR "Doxygen warnings (${LOG}):\n${text}")
  endif()
endif()
