#include "ductstream/destination/http_destination.h"

#include <curl/curl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/lsn.h"
#include "ductstream/base/status.h"
#include "ductstream/codec/codec.h"
#include "ductstream/codec/row_json.h"

namespace ductstream::destination {
namespace {

spdlog::logger& Log() {
  static const auto logger = base::GetLogger("http");
  return *logger;
}

// Enough of a response body to explain a rejection, not enough to flood the log.
constexpr size_t kMaxResponseBody = 1024;

// One request of a batch.
struct Request {
  std::string body;
  std::string content_type;
  std::string key;  // idempotency key
  std::vector<std::pair<std::string, std::string>> headers;
  std::string what;  // "public.t (insert at 0/16B3748)": for messages
};

struct Answer {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::string transport_error;
};

size_t CollectBody(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  const size_t len = size * n;
  if (out->size() < kMaxResponseBody)
    out->append(data, std::min(len, kMaxResponseBody - out->size()));
  return len;
}

// The URL without its query string, which may carry credentials.
std::string UrlForMessages(const std::string& url) { return url.substr(0, url.find('?')); }

class HttpDestination final : public runner::Destination {
 public:
  explicit HttpDestination(HttpDestinationConfig config) : config_(std::move(config)) {}
  ~HttpDestination() override {
    if (curl_ != nullptr) curl_easy_cleanup(curl_);
  }

  absl::Status Init() {
    static std::once_flag global_init;
    static CURLcode global_code = CURLE_OK;
    std::call_once(global_init, [] { global_code = curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (global_code != CURLE_OK) {
      return absl::InternalError(
          absl::StrCat(Prefix(), "curl_global_init: ", curl_easy_strerror(global_code)));
    }
    DS_ASSIGN_OR_RETURN(encoder_, codec::MakeEncoder(opts().format));
    curl_ = curl_easy_init();
    if (curl_ == nullptr) return absl::InternalError(absl::StrCat(Prefix(), "curl_easy_init"));
    return absl::OkStatus();
  }

  const std::string& name() const override { return config_.name; }

  absl::Status Write(const cdc::ChangeBatch& batch) override {
    for (const cdc::RelationChanges& changes : batch.relations) {
      if (changes.num_rows() == 0) continue;
      std::vector<Request> requests;
      DS_RETURN_IF_ERROR(BuildRequests(changes, requests));
      for (const Request& r : requests) DS_RETURN_IF_ERROR(Send(r));
    }
    return absl::OkStatus();
  }

 private:
  const HttpOptions& opts() const { return config_.options; }
  std::string Prefix() const { return absl::StrCat("http destination ", config_.name, ": "); }

  absl::Status BuildRequests(const cdc::RelationChanges& changes, std::vector<Request>& out) {
    const std::string qualified = changes.QualifiedName();
    const std::string format(codec::WireFormatName(opts().format));
    DS_ASSIGN_OR_RETURN(auto renderer, codec::RowJsonRenderer::Create(changes));
    auto identity = [&](int64_t r) {
      return absl::StrCat(renderer->commit_lsn(r).ToString(), ":", renderer->seq(r));
    };
    if (opts().payload_mode == HttpPayloadMode::kBatch) {
      Request req;
      DS_RETURN_IF_ERROR_CTX(encoder_->Encode(changes, &req.body),
                             absl::StrCat(Prefix(), "encoding ", qualified));
      if (req.body.empty()) return absl::OkStatus();  // nothing to say (SPEC §6: empty output)
      const int64_t last = changes.num_rows() - 1;
      req.content_type = std::string(codec::ContentType(opts().format));
      req.key = absl::StrCat(identity(0), "..", identity(last));
      req.headers = {{"X-Ductstream-Table", qualified},
                     {"X-Ductstream-Format", format},
                     {"X-Ductstream-Rows", absl::StrCat(changes.num_rows())}};
      req.what = absl::StrCat(qualified, " (", changes.num_rows(), " changes ", req.key, ")");
      out.push_back(std::move(req));
      return absl::OkStatus();
    }
    for (int64_t r = 0; r < changes.num_rows(); ++r) {
      Request req;
      if (opts().format == codec::WireFormat::kJson) {
        renderer->AppendChange(r, &req.body);
        req.content_type = "application/json";
      } else {
        // The format's own encoding of this one change: a self-contained document.
        cdc::RelationChanges one = changes;
        one.records = changes.records->Slice(r, 1);
        one.first_commit_lsn = renderer->commit_lsn(r);
        one.first_seq = renderer->seq(r);
        DS_RETURN_IF_ERROR_CTX(encoder_->Encode(one, &req.body),
                               absl::StrCat(Prefix(), "encoding ", qualified));
        if (req.body.empty()) continue;
        req.content_type = std::string(codec::ContentType(opts().format));
      }
      req.key = identity(r);
      req.headers = {{"X-Ductstream-Table", qualified},
                     {"X-Ductstream-Format", format},
                     {"X-Ductstream-Rows", "1"},
                     {"X-Ductstream-Op", std::string(renderer->op(r))},
                     {"X-Ductstream-Lsn", renderer->lsn(r).ToString()},
                     {"X-Ductstream-Commit-Lsn", renderer->commit_lsn(r).ToString()},
                     {"X-Ductstream-Seq", absl::StrCat(renderer->seq(r))}};
      req.what = absl::StrCat(qualified, " (", renderer->op(r), " ", req.key, ")");
      out.push_back(std::move(req));
    }
    return absl::OkStatus();
  }

  Answer Perform(const Request& req) {
    Answer answer;
    curl_easy_reset(curl_);
    struct curl_slist* headers = nullptr;
    auto add = [&](const std::string& line) { headers = curl_slist_append(headers, line.c_str()); };
    add(absl::StrCat("Content-Type: ", req.content_type));
    add(absl::StrCat(opts().idempotency_header, ": ", req.key));
    add("Expect:");  // no 100-continue round trip for large bodies
    for (const auto& [k, v] : req.headers) add(absl::StrCat(k, ": ", v));
    for (const auto& [k, v] : opts().headers) add(absl::StrCat(k, ": ", v));
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl_, CURLOPT_URL, opts().url.c_str());
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, opts().method.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(opts().timeout)));
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &CollectBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &answer.body);
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, "ductstream");
    answer.code = curl_easy_perform(curl_);
    if (answer.code == CURLE_OK) {
      curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &answer.status);
    } else {
      answer.transport_error =
          errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(answer.code));
    }
    curl_slist_free_all(headers);
    return answer;
  }

  absl::Status Send(const Request& req) {
    const int attempts = opts().retry.max_retries + 1;
    for (int attempt = 1;; ++attempt) {
      Answer a = Perform(req);
      if (a.code == CURLE_OK && a.status < 300) return absl::OkStatus();
      std::string reason;
      if (a.code != CURLE_OK) {
        reason = absl::StrCat("transport error: ", a.transport_error);
      } else {
        reason = absl::StrCat("http destination status ", a.status);
        if (!a.body.empty()) {
          absl::StrAppend(&reason, ": ", a.body,
                          a.body.size() >= kMaxResponseBody ? "... (truncated)" : "");
        }
        if (!IsRetriableHttpStatus(a.status)) {
          return absl::FailedPreconditionError(
              absl::StrCat(Prefix(), opts().method, " ", UrlForMessages(opts().url), " for ",
                           req.what, " was rejected: ", reason, ". Nothing was acknowledged."));
        }
      }
      if (attempt >= attempts) {
        return absl::UnavailableError(absl::StrCat(
            Prefix(), opts().method, " ", UrlForMessages(opts().url), " for ", req.what,
            " failed after ", attempt, " attempts: ", reason, ". Nothing was acknowledged."));
      }
      const absl::Duration wait =
          PushBackoffWithJitter(opts().retry, attempt, absl::Uniform(rng_, 0.0, 1.0));
      Log().warn("{}{} for {}; sending again in {} (attempt {} of {})", Prefix(), reason, req.what,
                 absl::FormatDuration(wait), attempt + 1, attempts);
      absl::SleepFor(wait);
    }
  }

  HttpDestinationConfig config_;
  std::unique_ptr<codec::Encoder> encoder_;
  CURL* curl_ = nullptr;  // reused: keeps the connection alive between requests
  absl::BitGen rng_;
};

}  // namespace

bool IsRetriableHttpStatus(long status) { return status == 408 || status == 429 || status >= 500; }

absl::StatusOr<std::unique_ptr<runner::Destination>> MakeHttpDestination(
    HttpDestinationConfig config) {
  auto dest = std::make_unique<HttpDestination>(std::move(config));
  DS_RETURN_IF_ERROR(dest->Init());
  return dest;
}

}  // namespace ductstream::destination
