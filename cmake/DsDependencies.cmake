# Every third-party dependency is found here, once, and exposed as an imported target.
# scripts/bootstrap installs all of them; a missing one fails configuration with its name.

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

find_package(absl CONFIG REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(RapidJSON CONFIG REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(GTest CONFIG REQUIRED)
find_package(benchmark CONFIG REQUIRED)
find_package(CURL REQUIRED)

pkg_check_modules(DS_LIBPQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(DS_RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
pkg_check_modules(DS_AVRO REQUIRED IMPORTED_TARGET avro-c)
pkg_check_modules(DS_SQLITE REQUIRED IMPORTED_TARGET sqlite3)

add_library(ds::libpq ALIAS PkgConfig::DS_LIBPQ)
add_library(ds::rdkafka ALIAS PkgConfig::DS_RDKAFKA)
add_library(ds::avro ALIAS PkgConfig::DS_AVRO)
add_library(ds::sqlite ALIAS PkgConfig::DS_SQLITE)

find_program(DS_PROTOC protoc REQUIRED)
find_program(DS_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

include(DsArrow)

# Python interpreter of the project virtualenv: the independent reader (pyarrow, fastavro, ...)
# that tests use to check our output.
set(DS_PYTHON "${DS_VENV}/bin/python3" CACHE FILEPATH "Python with pyarrow, used by tests as a reader")
