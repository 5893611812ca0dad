# Compiler settings shared by every target: warnings as errors, ccache, sanitizers, rpath.

find_program(DS_CCACHE ccache)
if(DS_CCACHE)
  set(CMAKE_C_COMPILER_LAUNCHER "${DS_CCACHE}")
  set(CMAKE_CXX_COMPILER_LAUNCHER "${DS_CCACHE}")
endif()

# Our own code only; third-party headers are included as SYSTEM so their warnings stay theirs.
set(DS_WARNING_FLAGS -Wall -Wextra -Werror -Wno-missing-field-initializers)

set(DS_SANITIZE "" CACHE STRING "Sanitizers to build with: '', 'address;undefined' or 'thread'")
if(DS_SANITIZE)
  list(JOIN DS_SANITIZE "," _ds_san)
  add_compile_options(-fsanitize=${_ds_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_ds_san})
endif()

# Binaries run from the build tree and from an install prefix without LD_LIBRARY_PATH:
# the build tree gets absolute rpaths to every linked library (CMake's default), installed
# binaries look next to themselves and in ../lib, where scripts/install copies Arrow's libraries.
set(CMAKE_INSTALL_RPATH "$ORIGIN/../lib")
set(CMAKE_BUILD_RPATH_USE_ORIGIN OFF)
