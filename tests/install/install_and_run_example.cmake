# cmake -P script: installs the ddtrain build BUILD_DIR into WORK_DIR/prefix, checks the
# installed layout, builds examples/embed (a separate project using find_package(ddtrain))
# against that prefix only, and runs it serially and, if MPIEXEC is given, with 2 ranks.
# Variables: BUILD_DIR, SOURCE_DIR, WORK_DIR (required); MPIEXEC, CXX_COMPILER,
# CXX_COMPILER_LAUNCHER, PKG_CONFIG, DEPENDENCY_PREFIX_PATH ('|'-separated prefixes where the
# build found its dependencies, searched after the install prefix) (optional).
foreach(var BUILD_DIR SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${var} is not set")
  endif()
endforeach()

set(prefix ${WORK_DIR}/prefix)
set(example ${WORK_DIR}/example)
file(REMOVE_RECURSE ${prefix} ${example} ${WORK_DIR}/pkgconfig-check)
file(MAKE_DIRECTORY ${WORK_DIR})

function(run what)
  message(STATUS "== ${what}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc})")
  endif()
endfunction()

# 1. Install into a fresh prefix.
run("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

# 2. What must be there.
foreach(path include/ddtrain/ddtrain.hpp include/ddtrain/version.hpp include/ddtrain/solver.hpp
             include/ddtrain/solvers/plbfgs.hpp include/ddtrain/comm/communicator.hpp bin/ddtrain)
  if(NOT EXISTS ${prefix}/${path})
    message(FATAL_ERROR "not installed: ${path}")
  endif()
endforeach()
file(GLOB_RECURSE config_files ${prefix}/*/ddtrainConfig.cmake)
file(GLOB_RECURSE version_files ${prefix}/*/ddtrainConfigVersion.cmake)
file(GLOB_RECURSE target_files ${prefix}/*/ddtrainTargets.cmake)
file(GLOB_RECURSE pc_files ${prefix}/*/pkgconfig/ddtrain.pc)
file(GLOB_RECURSE sonames ${prefix}/*/libddtrain.so.*)
foreach(list config_files version_files target_files pc_files sonames)
  if(NOT ${list})
    message(FATAL_ERROR "not installed: ${list}")
  endif()
endforeach()
foreach(file IN LISTS config_files target_files)  # nothing may point back into the build
  file(READ ${file} text)
  string(FIND "${text}" "${BUILD_DIR}" hit)
  if(NOT hit EQUAL -1)
    message(FATAL_ERROR "${file} refers to the build directory ${BUILD_DIR}")
  endif()
endforeach()

# The installed program runs without LD_LIBRARY_PATH (its RPATH names ../lib and the
# dependencies' directories).
run("installed ddtrain --version" ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH ${prefix}/bin/ddtrain --version)

# 3. pkg-config: the relocated .pc file gives working include and library flags.
if(PKG_CONFIG)
  list(GET pc_files 0 pc_file)
  get_filename_component(pc_dir ${pc_file} DIRECTORY)
  set(ENV{PKG_CONFIG_PATH} ${pc_dir})
  execute_process(COMMAND ${PKG_CONFIG} --cflags --libs ddtrain OUTPUT_VARIABLE pc_flags
                  RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config --cflags --libs ddtrain failed")
  endif()
  message(STATUS "== pkg-config: ${pc_flags}")
  set(check ${WORK_DIR}/pkgconfig-check)
  file(MAKE_DIRECTORY ${check})
  file(WRITE ${check}/version.cpp
       "#include <ddtrain/version.hpp>\n#include <cstring>\n"
       "int main() { return std::strcmp(ddtrain::version(), DDTRAIN_VERSION_STRING) != 0; }\n")
  separate_arguments(pc_list UNIX_COMMAND "${pc_flags}")
  set(cxx c++)
  if(CXX_COMPILER)
    set(cxx ${CXX_COMPILER})
  endif()
  run("pkg-config compile" ${cxx} -std=c++17 ${check}/version.cpp -o ${check}/version ${pc_list})
endif()

# 4. Configure and build the example against the installed package only.
# The dependencies' prefixes go in the environment's CMAKE_PREFIX_PATH, which find_package
# searches after the cache variable (and a ';' list would not survive as one argument).
if(DEPENDENCY_PREFIX_PATH)
  string(REPLACE "|" ":" dependency_prefixes "${DEPENDENCY_PREFIX_PATH}")
  set(ENV{CMAKE_PREFIX_PATH} "${dependency_prefixes}")
endif()
set(configure_args -S ${SOURCE_DIR}/examples/embed -B ${example} -DCMAKE_PREFIX_PATH=${prefix}
                   -DCMAKE_BUILD_TYPE=Release)
if(CXX_COMPILER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
if(CXX_COMPILER_LAUNCHER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER_LAUNCHER=${CXX_COMPILER_LAUNCHER})
endif()
run("configure example" ${CMAKE_COMMAND} ${configure_args})
file(READ ${example}/CMakeCache.txt cache)
string(REGEX MATCH "ddtrain_DIR:PATH=[^\n]*" found_dir "${cache}")
string(FIND "${found_dir}" "${prefix}" hit)
if(hit EQUAL -1)
  message(FATAL_ERROR "the example found another ddtrain: ${found_dir}")
endif()
run("build example" ${CMAKE_COMMAND} --build ${example} -j2)

# 5. Run it: one process, then two.
run("run example (1 process)" ${example}/embed_example)
if(MPIEXEC)
  run("run example (2 ranks)" ${MPIEXEC} -n 2 --oversubscribe ${example}/embed_example)
endif()
