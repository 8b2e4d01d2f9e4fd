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
install(EXPORT ddtrainTargets NAMESPACE ddtrain:: DESTINATION ${DDTRAIN_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ddtrainConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ddtrainConfig.cmake INSTALL_DESTINATION ${DDTRAIN_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ddtrainConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ddtrainConfig.cmake ${PROJECT_BINARY_DIR}/ddtrainConfigVersion.cmake
        DESTINATION ${DDTRAIN_CMAKE_DIR})

configure_file(${PROJECT_SOURCE_DIR}/cmake/ddtrain.pc.in ${PROJECT_BINARY_DIR}/ddtrain.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ddtrain.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
