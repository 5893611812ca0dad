# Apache Arrow C++ and Parquet.
#
# A system Arrow (ArrowConfig.cmake / ParquetConfig.cmake) wins when one is installed. Otherwise we
# build against the C++ libraries and headers shipped inside the pinned pyarrow wheel in the project
# virtualenv (scripts/bootstrap installs it), as Arrow documents for extensions built against
# pyarrow. The wheel's libraries are manylinux_2_28 builds with the new libstdc++ ABI; a link check
# below proves that our compiler agrees before anything else is compiled.
#
# Exposes ds::arrow, ds::parquet, ds::arrow_compute and ds::arrow_s3 (when available).

set(DS_VENV "${CMAKE_SOURCE_DIR}/.venv" CACHE PATH "Project virtualenv holding the pinned pyarrow")
option(DS_USE_SYSTEM_ARROW "Prefer a system-installed Arrow C++ when one is found" ON)

set(DS_ARROW_SOURCE "")
if(DS_USE_SYSTEM_ARROW)
  find_package(Arrow CONFIG QUIET)
  find_package(Parquet CONFIG QUIET)
  if(Arrow_FOUND AND Parquet_FOUND)
    set(DS_ARROW_SOURCE "system ${Arrow_VERSION}")
    add_library(ds::arrow ALIAS Arrow::arrow_shared)
    add_library(ds::parquet ALIAS Parquet::parquet_shared)
    find_package(ArrowCompute CONFIG QUIET)
    if(TARGET ArrowCompute::arrow_compute_shared)
      add_library(ds::arrow_compute ALIAS ArrowCompute::arrow_compute_shared)
    else()
      add_library(ds::arrow_compute ALIAS Arrow::arrow_shared)
    endif()
    add_library(ds::arrow_s3 ALIAS Arrow::arrow_shared)  # S3 lives in libarrow in system builds
  endif()
endif()

if(NOT DS_ARROW_SOURCE)
  set(_ds_py "${DS_VENV}/bin/python3")
  if(NOT EXISTS "${_ds_py}")
    message(FATAL_ERROR
      "Arrow C++ not found: no system Arrow and no virtualenv at ${DS_VENV}. Run scripts/bootstrap.")
  endif()
  execute_process(
    COMMAND "${_ds_py}" -c
      "import os, pyarrow; print(pyarrow.get_include()); print(os.path.dirname(pyarrow.__file__)); print(pyarrow.__version__)"
    OUTPUT_VARIABLE _ds_pa_out RESULT_VARIABLE _ds_pa_rc OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _ds_pa_rc EQUAL 0)
    message(FATAL_ERROR "pyarrow is not importable from ${_ds_py}. Run scripts/bootstrap.")
  endif()
  string(REPLACE "\n" ";" _ds_pa_lines "${_ds_pa_out}")
  list(GET _ds_pa_lines 0 DS_ARROW_INCLUDE_DIR)
  list(GET _ds_pa_lines 1 DS_ARROW_LIB_DIR)
  list(GET _ds_pa_lines 2 DS_ARROW_VERSION)
  set(DS_ARROW_SOURCE "pyarrow wheel ${DS_ARROW_VERSION} (${DS_ARROW_LIB_DIR})")

  # Import one bundled library by its versioned file name (libarrow.so.2600): the wheel ships no
  # unversioned symlinks and linking the full path records the SONAME, not the path.
  function(_ds_import_wheel_lib target stem)
    file(GLOB _ds_candidates "${DS_ARROW_LIB_DIR}/lib${stem}.so.*")
    list(FILTER _ds_candidates EXCLUDE REGEX "\\.so\\.[0-9]+\\.[0-9]+")
    if(NOT _ds_candidates)
      return()
    endif()
    list(GET _ds_candidates 0 _ds_lib)
    add_library(${target} SHARED IMPORTED GLOBAL)
    set_target_properties(${target} PROPERTIES
      IMPORTED_LOCATION "${_ds_lib}"
      INTERFACE_INCLUDE_DIRECTORIES "${DS_ARROW_INCLUDE_DIR}")
  endfunction()

  _ds_import_wheel_lib(ds_arrow_imported arrow)
  _ds_import_wheel_lib(ds_parquet_imported parquet)
  _ds_import_wheel_lib(ds_arrow_compute_imported arrow_compute)
  _ds_import_wheel_lib(ds_arrow_s3_imported arrow_s3)
  if(NOT TARGET ds_arrow_imported OR NOT TARGET ds_parquet_imported)
    message(FATAL_ERROR "pyarrow at ${DS_ARROW_LIB_DIR} lacks libarrow/libparquet. Run scripts/bootstrap.")
  endif()
  set_property(TARGET ds_parquet_imported APPEND PROPERTY INTERFACE_LINK_LIBRARIES ds_arrow_imported)
  add_library(ds::arrow ALIAS ds_arrow_imported)
  add_library(ds::parquet ALIAS ds_parquet_imported)
  if(TARGET ds_arrow_compute_imported)
    set_property(TARGET ds_arrow_compute_imported APPEND PROPERTY
      INTERFACE_LINK_LIBRARIES ds_arrow_imported)
    add_library(ds::arrow_compute ALIAS ds_arrow_compute_imported)
  else()
    add_library(ds::arrow_compute ALIAS ds_arrow_imported)
  endif()
  if(TARGET ds_arrow_s3_imported)
    set_property(TARGET ds_arrow_s3_imported APPEND PROPERTY INTERFACE_LINK_LIBRARIES ds_arrow_imported)
    add_library(ds::arrow_s3 ALIAS ds_arrow_s3_imported)
  else()
    add_library(ds::arrow_s3 ALIAS ds_arrow_imported)
  endif()

  # ABI check: arrow::Status::ToString() returns std::string, whose mangled name differs between
  # the old and the new libstdc++ ABI. If the wheel and our compiler disagree, this fails to link.
  include(CheckCXXSourceCompiles)
  set(CMAKE_REQUIRED_INCLUDES "${DS_ARROW_INCLUDE_DIR}")
  get_target_property(_ds_arrow_loc ds_arrow_imported IMPORTED_LOCATION)
  set(CMAKE_REQUIRED_LIBRARIES "${_ds_arrow_loc}")
  set(CMAKE_REQUIRED_FLAGS "-std=c++20")
  check_cxx_source_compiles([=[
    #include <arrow/status.h>
    #include <string>
    int main() { std::string s = arrow::Status::Invalid("x").ToString(); return s.empty(); }
  ]=] DS_ARROW_ABI_MATCHES)
  unset(CMAKE_REQUIRED_INCLUDES)
  unset(CMAKE_REQUIRED_LIBRARIES)
  unset(CMAKE_REQUIRED_FLAGS)
  if(NOT DS_ARROW_ABI_MATCHES)
    message(FATAL_ERROR
      "Arrow from ${DS_ARROW_LIB_DIR} does not link with this compiler (C++ ABI mismatch?). "
      "See CMakeFiles/CMakeError.log.")
  endif()
endif()

message(STATUS "Arrow: ${DS_ARROW_SOURCE}")
