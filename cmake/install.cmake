# cmake/install.cmake — what `cmake --install` (and `make install PREFIX=...`) puts under the
# prefix: the public headers, libvtstore.so* and libvtstore.a, the vtstore CLI, a pkg-config file
# and a CMake package (find_package(vtstore) -> vtstore::vtstore, vtstore::vtstore_static).
# Both vtstore.pc and the CMake package locate the prefix from their own path (relocatable).
include(CMakePackageConfigHelpers)

set(VT_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/vtstore)
set(VT_PCDIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(TARGETS vtstore_shared vtstore_static EXPORT vtstoreTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS vtstore RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/vtstore DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
# Libraries outside the system directories (the CUDA toolkit's) stay findable once installed.
set_target_properties(vtstore_shared vtstore PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)

# ---- CMake package ----
install(EXPORT vtstoreTargets NAMESPACE vtstore:: DESTINATION ${VT_CMAKEDIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/vtstoreConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/vtstoreConfig.cmake INSTALL_DESTINATION ${VT_CMAKEDIR})
# 0.x: a new minor version may change the API, so only the same minor version is compatible
write_basic_package_version_file(${CMAKE_BINARY_DIR}/vtstoreConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/vtstoreConfig.cmake ${CMAKE_BINARY_DIR}/vtstoreConfigVersion.cmake
        DESTINATION ${VT_CMAKEDIR})

# ---- pkg-config ----
# prefix is ${pcfiledir} up as many levels as the pkgconfig directory is deep (lib/pkgconfig:
# ../..; Debian's lib/x86_64-linux-gnu/pkgconfig: ../../..).
if(IS_ABSOLUTE ${CMAKE_INSTALL_LIBDIR} OR IS_ABSOLUTE ${CMAKE_INSTALL_INCLUDEDIR})
  set(VT_PC_PREFIX ${CMAKE_INSTALL_PREFIX}) # absolute directories: not relocatable
  set(VT_PC_LIBDIR ${CMAKE_INSTALL_FULL_LIBDIR})
  set(VT_PC_INCLUDEDIR ${CMAKE_INSTALL_FULL_INCLUDEDIR})
else()
  file(RELATIVE_PATH _rel /p/${VT_PCDIR} /p) # "../../"
  string(REGEX REPLACE "/$" "" _rel ${_rel})
  set(VT_PC_PREFIX "\${pcfiledir}/${_rel}")
  set(VT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(VT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
set(VT_PC_LIBS_PRIVATE "-llmdb -lpthread -lm")
if(VT_HAVE_CUDA)
  string(APPEND VT_PC_LIBS_PRIVATE " -L${CUDAToolkit_LIBRARY_DIR} -lcublas -lcudart -lstdc++")
endif()
configure_file(${CMAKE_SOURCE_DIR}/cmake/vtstore.pc.in ${CMAKE_BINARY_DIR}/vtstore.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/vtstore.pc DESTINATION ${VT_PCDIR})
