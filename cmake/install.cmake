# SPDX-License-Identifier: MIT
# Install rules: headers, libctml, the ctml tool, the docs, the CMake package
# (ctmlConfig.cmake, its version file, ctmlTargets.cmake: target ctml::ctml)
# and ctml.pc for pkg-config. Every installed path is relative to the prefix,
# so `cmake --install <build> --prefix <dir>` may choose it at install time.
include(CMakePackageConfigHelpers)
set(CTML_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ctml)
set(CTML_SHARED OFF)
if(ctml_type STREQUAL "SHARED_LIBRARY")
  set(CTML_SHARED ON)
endif()

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ctml ${CTML_GENERATED_INCLUDE_DIR}/ctml
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev FILES_MATCHING PATTERN "*.h")
install(TARGETS ctml EXPORT ctmlTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT lib)

if(TARGET ctml_cli)
  if(CTML_SHARED)
    # The installed tool finds the installed libctml relative to itself.
    file(RELATIVE_PATH ctml_bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
    set_target_properties(ctml_cli PROPERTIES INSTALL_RPATH "$ORIGIN/${ctml_bin_to_lib}")
  endif()
  install(TARGETS ctml_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tool)
endif()

install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/LICENSE
              ${PROJECT_SOURCE_DIR}/CHANGELOG.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT doc)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs
        COMPONENT doc)

# The CMake package.
install(EXPORT ctmlTargets NAMESPACE ctml:: DESTINATION ${CTML_CMAKE_DIR} COMPONENT dev)
set(CTML_CUDA_ROOT "")
if(CTML_WITH_CUDA)
  get_filename_component(CTML_CUDA_ROOT "${CUDAToolkit_BIN_DIR}" DIRECTORY)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ctmlConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ctmlConfig.cmake INSTALL_DESTINATION ${CTML_CMAKE_DIR})
# Before 1.0 a minor version may break the API: only the same minor is compatible.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(ctml_compat SameMinorVersion)
else()
  set(ctml_compat SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ctmlConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY ${ctml_compat})
install(FILES ${PROJECT_BINARY_DIR}/ctmlConfig.cmake ${PROJECT_BINARY_DIR}/ctmlConfigVersion.cmake
        DESTINATION ${CTML_CMAKE_DIR} COMPONENT dev)

# ctml.pc, relocatable: the prefix is found from the file's own directory.
set(CTML_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${CTML_PC_DIR}")
  message(FATAL_ERROR "ctml.pc needs a relative CMAKE_INSTALL_LIBDIR (got ${CMAKE_INSTALL_LIBDIR})")
endif()
file(RELATIVE_PATH CTML_PC_PREFIX_REL /prefix/${CTML_PC_DIR} /prefix)
string(REGEX REPLACE "/$" "" CTML_PC_PREFIX_REL "${CTML_PC_PREFIX_REL}")
set(CTML_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(CTML_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(CTML_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
set(ctml_pc_private "-lm")
foreach(lib ${CMAKE_DL_LIBS})
  string(APPEND ctml_pc_private " -l${lib}")
endforeach()
string(STRIP "${CTML_PC_LIBS_PRIVATE} ${ctml_pc_private}" CTML_PC_LIBS_PRIVATE)
configure_file(${PROJECT_SOURCE_DIR}/cmake/ctml.pc.in ${PROJECT_BINARY_DIR}/ctml.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ctml.pc DESTINATION ${CTML_PC_DIR} COMPONENT dev)
