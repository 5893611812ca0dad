// librdkafka, Avro C, SQLite, libcurl and prometheus-cpp link and each make one real call.
#include <arpa/inet.h>
#include <avro.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "ductstream/testing/pg_sandbox.h"
#include "ductstream/testing/subprocess.h"

namespace ductstream {
namespace {

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("ds-deps-smoke-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

// --- librdkafka: produce one message to an in-process mock cluster and get its delivery report.
// (The mock cluster is librdkafka's own broker implementation; the real Kafka broker arrives with
// the Kafka destination.)
std::atomic<int> g_delivered{0};
std::atomic<int> g_failed{0};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR ? g_delivered : g_failed)++;
}

TEST(DepsSmokeTest, RdKafkaProducesToMockCluster) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ASSERT_EQ(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof err),
            RD_KAFKA_CONF_OK)
      << err;
  ASSERT_EQ(rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err),
            RD_KAFKA_CONF_OK)
      << err;
  rd_kafka_conf_set_dr_msg_cb(conf, OnDelivery);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  ASSERT_NE(rk, nullptr) << err;
  std::string payload = "hello kafka";
  rd_kafka_resp_err_t rc =
      rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("ductstream.smoke"), RD_KAFKA_V_KEY("k", 1),
                        RD_KAFKA_V_VALUE(payload.data(), payload.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  ASSERT_EQ(rc, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(rc);
  EXPECT_EQ(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(g_delivered.load(), 1);
  EXPECT_EQ(g_failed.load(), 0);
  rd_kafka_destroy(rk);
}

// --- Avro C: write an object container file; fastavro (not ours) reads it back.
TEST(DepsSmokeTest, AvroFileReadBackByFastavro) {
  const char* schema_json = R"({"type":"record","name":"Change","fields":[
      {"name":"lsn","type":"long"},{"name":"op","type":"string"},
      {"name":"after","type":["null","bytes"]}]})";
  avro_schema_t schema;
  ASSERT_EQ(avro_schema_from_json_length(schema_json, strlen(schema_json), &schema), 0)
      << avro_strerror();
  const std::string path = TempPath("changes.avro");
  std::filesystem::remove(path);
  avro_file_writer_t writer;
  ASSERT_EQ(avro_file_writer_create(path.c_str(), schema, &writer), 0) << avro_strerror();
  avro_value_iface_t* iface = avro_generic_class_from_schema(schema);
  for (int i = 0; i < 3; ++i) {
    avro_value_t record, field, branch;
    ASSERT_EQ(avro_generic_value_new(iface, &record), 0);
    avro_value_get_by_name(&record, "lsn", &field, nullptr);
    avro_value_set_long(&field, 1000 + i);
    avro_value_get_by_name(&record, "op", &field, nullptr);
    avro_value_set_string(&field, i == 2 ? "delete" : "insert");
    avro_value_get_by_name(&record, "after", &field, nullptr);
    if (i == 2) {
      avro_value_set_branch(&field, 0, &branch);
      avro_value_set_null(&branch);
    } else {
      avro_value_set_branch(&field, 1, &branch);
      char bytes[2] = {static_cast<char>(0xAB), static_cast<char>(i)};
      avro_value_set_bytes(&branch, bytes, 2);
    }
    ASSERT_EQ(avro_file_writer_append_value(writer, &record), 0) << avro_strerror();
    avro_value_decref(&record);
  }
  ASSERT_EQ(avro_file_writer_close(writer), 0);
  avro_value_iface_decref(iface);
  avro_schema_decref(schema);

  auto out = testing::RunCommandOk(
      {testing::PythonBin(), testing::SourceDir() + "/tests/smoke/read_avro.py", path});
  ASSERT_TRUE(out.ok()) << out.status();
  auto got = nlohmann::json::parse(*out);
  EXPECT_EQ(got["schema_name"], "Change");
  auto expected = nlohmann::json::parse(R"([
      {"lsn":1000,"op":"insert","after":"ab00"},
      {"lsn":1001,"op":"insert","after":"ab01"},
      {"lsn":1002,"op":"delete","after":null}])");
  EXPECT_EQ(got["records"], expected);
  std::filesystem::remove(path);
}

// --- SQLite: a file database, a prepared insert, an aggregate read back.
TEST(DepsSmokeTest, SqliteRoundTrip) {
  const std::string path = TempPath("store.db");
  std::filesystem::remove(path);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* errmsg = nullptr;
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE checkpoints(flow_id TEXT PRIMARY KEY, lsn INTEGER)",
                         nullptr, nullptr, &errmsg),
            SQLITE_OK)
      << errmsg;
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO checkpoints VALUES (?, ?)", -1, &insert, nullptr),
            SQLITE_OK);
  for (int i = 1; i <= 3; ++i) {
    std::string id = "flow-" + std::to_string(i);
    sqlite3_bind_text(insert, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert, 2, int64_t{i} << 32);
    ASSERT_EQ(sqlite3_step(insert), SQLITE_DONE);
    sqlite3_reset(insert);
  }
  sqlite3_finalize(insert);
  sqlite3_close(db);

  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);  // durable across reopen
  sqlite3_stmt* sum = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*), sum(lsn) FROM checkpoints", -1, &sum, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(sum), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(sum, 0), 3);
  EXPECT_EQ(sqlite3_column_int64(sum, 1), int64_t{6} << 32);
  sqlite3_finalize(sum);
  sqlite3_close(db);
  std::filesystem::remove(path);
}

// --- libcurl: a POST to a one-shot HTTP server on loopback.
size_t CollectBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

TEST(DepsSmokeTest, CurlPostsToLoopbackServer) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  socklen_t len = sizeof addr;
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);

  std::string request;
  std::thread server([&] {
    int c = accept(listener, nullptr, nullptr);
    if (c < 0) return;
    char buf[4096];
    // Read until the end of headers plus the 11-byte body.
    while (request.find("\r\n\r\n") == std::string::npos ||
           request.size() < request.find("\r\n\r\n") + 4 + 11) {
      ssize_t r = read(c, buf, sizeof buf);
      if (r <= 0) break;
      request.append(buf, static_cast<size_t>(r));
    }
    const std::string reply =
        "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\nok";
    (void)write(c, reply.data(), reply.size());
    close(c);
  });

  CURL* curl = curl_easy_init();
  ASSERT_NE(curl, nullptr);
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/ingest";
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "hello world");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  server.join();
  close(listener);
  ASSERT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc);
  EXPECT_EQ(code, 201);
  EXPECT_EQ(body, "ok");
  EXPECT_EQ(request.rfind("POST /ingest HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_NE(request.find("\r\n\r\nhello world"), std::string::npos) << request;
}

// --- prometheus-cpp: a counter shows up in the text exposition format.
TEST(DepsSmokeTest, PrometheusExposesCounter) {
  prometheus::Registry registry;
  auto& family = prometheus::BuildCounter()
                     .Name("ductstream_rows_total")
                     .Help("Rows delivered")
                     .Register(registry);
  family.Add({{"flow", "f1"}}).Increment(41);
  family.Add({{"flow", "f1"}}).Increment();
  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find("ductstream_rows_total{flow=\"f1\"} 42"), std::string::npos) << text;
}

}  // namespace
}  // namespace ductstream
