# Installs the library, headers, the executable, a CMake package and a pkg-config file.
include(CMakePackageConfigHelpers)

install(TARGETS ddtrain EXPORT ddtrainTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS ddtrain_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ddtrain DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/ddtrain/version.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ddtrain)

set(DDTRAIN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ddtrain)
if(DDTRAIN_WITH_NCCL AND DDTRAIN_TORCH_HAS_CUDA)
  set(DDTRAIN_HAVE_NCCL_COMM ON)
else()
  set(DDTRAIN_HAVE_NCCL_COMM OFF)
endif()
install(EXPORT ddtrainTargets NAMESPACE ddtrain:: DESTINATION ${DDTRAIN_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ddtrainConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ddtrainConfig.cmake INSTALL_DESTINATION ${DDTRAIN_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ddtrainConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ddtrainConfig.cmake ${PROJECT_BINARY_DIR}/ddtrainConfigVersion.cmake
        DESTINATION ${DDTRAIN_CMAKE_DIR})

# pkg-config: relocatable (paths relative to the .pc file, so `cmake --install --prefix P` works),
# with the flags of the dependencies a user's translation unit needs (LibTorch, MPI) and the
# build-configuration macros the headers test.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(DDTRAIN_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _ddtrain_pc_up "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
  string(REGEX REPLACE "/$" "" _ddtrain_pc_up "${_ddtrain_pc_up}")
  set(DDTRAIN_PC_PREFIX "\${pcfiledir}/${_ddtrain_pc_up}")
endif()
set(_ddtrain_pc_cflags "${TORCH_CXX_FLAGS}")
foreach(_dir IN LISTS TORCH_INCLUDE_DIRS)
  if(NOT _dir STREQUAL "/usr/include")  # a system directory must not be reordered by -I
    string(APPEND _ddtrain_pc_cflags " -I${_dir}")
  endif()
endforeach()
foreach(_macro MPI NCCL CUDA)
  if(DDTRAIN_WITH_${_macro})
    string(APPEND _ddtrain_pc_cflags " -DDDTRAIN_WITH_${_macro}=1")
  else()
    string(APPEND _ddtrain_pc_cflags " -DDDTRAIN_WITH_${_macro}=0")
  endif()
endforeach()
if(DDTRAIN_WITH_NCCL AND DDTRAIN_TORCH_HAS_CUDA)
  string(APPEND _ddtrain_pc_cflags " -DDDTRAIN_HAVE_NCCL_COMM")
endif()
get_filename_component(_ddtrain_torch_libdir "${TORCH_LIBRARY}" DIRECTORY)
set(_ddtrain_pc_libs "-L${_ddtrain_torch_libdir} -ltorch -ltorch_cpu -lc10")
if(DDTRAIN_TORCH_HAS_CUDA)
  string(APPEND _ddtrain_pc_libs " -ltorch_cuda -lc10_cuda")
endif()
if(DDTRAIN_WITH_MPI)
  foreach(_dir IN LISTS MPI_CXX_INCLUDE_DIRS)
    string(APPEND _ddtrain_pc_cflags " -I${_dir}")
  endforeach()
  foreach(_lib IN LISTS MPI_CXX_LIBRARIES)
    string(APPEND _ddtrain_pc_libs " ${_lib}")
  endforeach()
endif()
string(STRIP "${_ddtrain_pc_cflags}" DDTRAIN_PC_CFLAGS)
set(DDTRAIN_PC_LIBS "${_ddtrain_pc_libs}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/ddtrain.pc.in ${PROJECT_BINARY_DIR}/ddtrain.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ddtrain.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
