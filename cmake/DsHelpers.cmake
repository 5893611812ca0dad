# Target helpers: one folder = one module = one library target (STYLE.md "Layout").

include(GoogleTest)

# ds_cc_library(NAME <module> SRCS <files...> DEPS <targets...>)
# Creates the static library ds_<module> (alias ds::<module>) whose headers are included as
# "ductstream/<module>/<file>.h".
function(ds_cc_library)
  cmake_parse_arguments(A "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(ds_${A_NAME} STATIC ${A_SRCS})
  add_library(ds::${A_NAME} ALIAS ds_${A_NAME})
  target_include_directories(ds_${A_NAME} PUBLIC "${PROJECT_SOURCE_DIR}/src")
  target_compile_options(ds_${A_NAME} PRIVATE ${DS_WARNING_FLAGS})
  target_link_libraries(ds_${A_NAME} PUBLIC ${A_DEPS})
endfunction()

# ds_cc_binary(NAME <exe> SRCS <files...> DEPS <targets...>)
function(ds_cc_binary)
  cmake_parse_arguments(A "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${A_NAME} ${A_SRCS})
  target_compile_options(${A_NAME} PRIVATE ${DS_WARNING_FLAGS})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS})
endfunction()

# ds_cc_test(NAME <exe> SRCS <files...> DEPS <targets...> LABELS <labels...>
#            [NEEDS_POSTGRES] [NEEDS_S3] [NEEDS_KAFKA] [ENVIRONMENT <K=V...>] [TIMEOUT <s>])
# One gtest binary; every TEST becomes its own ctest entry (discovered just before it runs, so
# nothing executes at build time). NEEDS_POSTGRES attaches the shared PostgreSQL sandbox fixture;
# NEEDS_S3 the shared S3 sandbox (scripts/s3-sandbox), whose state file the test finds in
# DS_S3_SANDBOX_STATE; NEEDS_KAFKA the shared Kafka broker (scripts/kafka-sandbox), whose state
# file the test finds in DS_KAFKA_SANDBOX_STATE.
function(ds_cc_test)
  cmake_parse_arguments(A "NEEDS_POSTGRES;NEEDS_S3;NEEDS_KAFKA" "NAME;TIMEOUT" "SRCS;DEPS;LABELS;ENVIRONMENT" ${ARGN})
  add_executable(${A_NAME} ${A_SRCS})
  target_compile_options(${A_NAME} PRIVATE ${DS_WARNING_FLAGS})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} ds::testing_main GTest::gtest GTest::gmock)
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  # Paths the tests need (source dir, sandbox state file, python) are compiled into ds::testing,
  # so a test binary behaves the same under ctest and when run by hand.
  set(_props LABELS "${A_LABELS}" TIMEOUT ${A_TIMEOUT})
  # One FIXTURES_REQUIRED list: the property given twice would keep only the last.
  set(_fixtures)
  if(A_NEEDS_POSTGRES)
    list(APPEND _fixtures postgres)
  endif()
  if(A_NEEDS_S3)
    list(APPEND _fixtures s3)
    target_compile_definitions(${A_NAME} PRIVATE
      DS_S3_SANDBOX_STATE="${PROJECT_BINARY_DIR}/s3-sandbox.state")
  endif()
  if(A_NEEDS_KAFKA)
    list(APPEND _fixtures kafka)
    target_compile_definitions(${A_NAME} PRIVATE
      DS_KAFKA_SANDBOX_STATE="${PROJECT_BINARY_DIR}/kafka-sandbox.state")
  endif()
  list(LENGTH _fixtures _fixture_count)
  if(_fixture_count EQUAL 1)
    list(APPEND _props FIXTURES_REQUIRED ${_fixtures})
  endif()
  if(A_ENVIRONMENT)
    list(APPEND _props ENVIRONMENT "${A_ENVIRONMENT}")
  endif()
  gtest_discover_tests(${A_NAME}
    DISCOVERY_MODE PRE_TEST
    DISCOVERY_TIMEOUT 60
    PROPERTIES ${_props})
  if(_fixture_count GREATER 1)
    # gtest_discover_tests flattens a list-valued property ("postgres;kafka" would become a
    # property named kafka), so several fixtures are set by a script that ctest includes after
    # the discovered tests (TEST_LIST: ${A_NAME}_TESTS).
    set(_script "${CMAKE_CURRENT_BINARY_DIR}/${A_NAME}_fixtures.cmake")
    file(WRITE "${_script}"
      "if(DEFINED ${A_NAME}_TESTS)\n"
      "  set_tests_properties(\${${A_NAME}_TESTS} PROPERTIES FIXTURES_REQUIRED \"${_fixtures}\")\n"
      "endif()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${_script}")
  endif()
endfunction()

# ds_proto_library(NAME <name> PROTOS <paths relative to ROOT> [GRPC] [ROOT <dir>] DEPS <targets>)
# Generates C++ (and gRPC stubs with GRPC) into the build tree; include as
# "ductstream/v1/<file>.pb.h". ROOT defaults to proto/.
function(ds_proto_library)
  cmake_parse_arguments(A "GRPC" "NAME;ROOT" "PROTOS;DEPS" ${ARGN})
  set(_root "${PROJECT_SOURCE_DIR}/proto")
  if(A_ROOT)
    set(_root "${A_ROOT}")
  endif()
  set(_out "${PROJECT_BINARY_DIR}/gen")
  file(MAKE_DIRECTORY "${_out}")
  set(_srcs)
  foreach(_p ${A_PROTOS})
    get_filename_component(_dir "${_p}" DIRECTORY)
    get_filename_component(_stem "${_p}" NAME_WE)
    set(_base "${_out}/${_dir}/${_stem}")
    set(_outputs "${_base}.pb.cc" "${_base}.pb.h")
    set(_args --proto_path=${_root} --cpp_out=${_out})
    if(A_GRPC)
      list(APPEND _outputs "${_base}.grpc.pb.cc" "${_base}.grpc.pb.h")
      list(APPEND _args --grpc_out=${_out} --plugin=protoc-gen-grpc=${DS_GRPC_CPP_PLUGIN})
    endif()
    add_custom_command(
      OUTPUT ${_outputs}
      COMMAND ${DS_PROTOC} ${_args} "${_root}/${_p}"
      DEPENDS "${_root}/${_p}" ${DS_PROTOC}
      COMMENT "protoc ${_p}"
      VERBATIM)
    list(APPEND _srcs ${_outputs})
  endforeach()
  add_library(ds_proto_${A_NAME} STATIC ${_srcs})
  add_library(ds::proto_${A_NAME} ALIAS ds_proto_${A_NAME})
  # Generated code is not ours: include it as a system directory so its warnings don't fail us.
  target_include_directories(ds_proto_${A_NAME} SYSTEM PUBLIC "${_out}")
  target_link_libraries(ds_proto_${A_NAME} PUBLIC protobuf::libprotobuf ${A_DEPS})
  if(A_GRPC)
    target_link_libraries(ds_proto_${A_NAME} PUBLIC gRPC::grpc++)
  endif()
endfunction()
