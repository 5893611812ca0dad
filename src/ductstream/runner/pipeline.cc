#include "ductstream/runner/pipeline.h"

#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <future>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/redact.h"
#include "ductstream/base/status.h"
#include "ductstream/cdc/assembler.h"
#include "ductstream/cdc/batch_builder.h"
#include "ductstream/cdc/speculative.h"
#include "ductstream/cdc/txn_buffer.h"
#include "ductstream/postgres/connection.h"
#include "ductstream/postgres/replication.h"
#include "ductstream/postgres/type_codec.h"
#include "ductstream/runner/toast_source.h"

namespace ductstream::runner {
namespace {

// Nice value of the threads that stage streamed transactions' batches (Stage).
constexpr int kStagingNice = 10;

// Batches between the reader and the writer. Push blocks while the queued bytes exceed the
// budget (one batch is always admitted, so a batch larger than the budget still flows).
class BatchQueue {
 public:
  explicit BatchQueue(int64_t max_bytes) : max_bytes_(max_bytes) {}

  /// While it waits, `waiting` runs every `interval` (without the lock): the reader keeps the
  /// walsender informed while a slow destination holds it here.
  absl::Status Push(cdc::ChangeBatch batch, absl::Duration interval,
                    const std::function<void()>& waiting) {
    absl::MutexLock lock(&mu_);
    auto admissible = [this, need = batch.bytes]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !failure_.ok() || queue_.empty() || bytes_ + need <= max_bytes_;
    };
    if (!admissible()) {
      const absl::Time since = absl::Now();
      while (!mu_.AwaitWithTimeout(absl::Condition(&admissible), interval)) {
        mu_.Unlock();
        waiting();
        mu_.Lock();
      }
      blocked_ += absl::Now() - since;
    }
    if (!failure_.ok()) return failure_;
    bytes_ += batch.bytes;
    queue_.push_back(std::move(batch));
    return absl::OkStatus();
  }

  /// Blocks until a batch is available; nullopt once closed and drained.
  std::optional<cdc::ChangeBatch> Pop() {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closed_; };
    mu_.Await(absl::Condition(&ready));
    if (queue_.empty()) return std::nullopt;
    cdc::ChangeBatch batch = std::move(queue_.front());
    queue_.pop_front();
    bytes_ -= batch.bytes;
    return batch;
  }

  /// Like Pop without blocking: nullopt when nothing is queued; `*done` tells whether nothing
  /// ever will be (closed and drained).
  std::optional<cdc::ChangeBatch> TryPop(bool* done) {
    absl::MutexLock lock(&mu_);
    *done = queue_.empty() && closed_;
    if (queue_.empty()) return std::nullopt;
    cdc::ChangeBatch batch = std::move(queue_.front());
    queue_.pop_front();
    bytes_ -= batch.bytes;
    return batch;
  }

  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

  /// The writer failed: wakes and fails every Push from now on.
  void Fail(absl::Status status) {
    absl::MutexLock lock(&mu_);
    failure_ = std::move(status);
    failed_.store(true, std::memory_order_release);
    closed_ = true;
    queue_.clear();
    bytes_ = 0;
  }

  /// Checked by the reader for every message: a lock only once the writer has failed.
  absl::Status failure() const {
    if (!failed_.load(std::memory_order_acquire)) return absl::OkStatus();
    absl::MutexLock lock(&mu_);
    return failure_;
  }

  /// How long Push waited for room in all (the destinations were slower than the source).
  absl::Duration blocked() const {
    absl::MutexLock lock(&mu_);
    return blocked_;
  }

 private:
  mutable absl::Mutex mu_;
  const int64_t max_bytes_;
  std::deque<cdc::ChangeBatch> queue_ ABSL_GUARDED_BY(mu_);
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  absl::Duration blocked_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> failed_{false};
};

// Sleeps up to `d`, waking early when `stop` is set.
void SleepUnlessStopped(absl::Duration d, const std::atomic<bool>& stop) {
  const absl::Time until = absl::Now() + d;
  while (!stop.load() && absl::Now() < until) {
    absl::SleepFor(std::min(absl::Milliseconds(50), until - absl::Now()));
  }
}

}  // namespace

class Pipeline::Impl {
 public:
  Impl(PipelineOptions options, std::vector<std::unique_ptr<Destination>> destinations,
       store::CheckpointStore* checkpoints, PipelineStats& stats)
      : options_(std::move(options)),
        destinations_(std::move(destinations)),
        checkpoints_(checkpoints),
        stats_(stats),
        queue_(options_.max_inflight_bytes),
        log_(base::GetLogger("pipeline")) {
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (options_.source.toast_fill == ToastFill::kSource) {
      toast_source_ = ToastSource::Create(options_.source.dsn, options_.source.binary);
    }
  }

  ~Impl() {
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  absl::Status Run(const std::atomic<bool>& stop) {
    DS_ASSIGN_OR_RETURN(Lsn start, StartPosition());
    std::thread writer([this] { WriteLoop(); });
    absl::Status read = ReadLoop(stop, start);
    // Whatever the reader built is written and checkpointed before we return (a graceful stop
    // loses nothing and re-delivers nothing); after a reader error too, since those batches
    // hold complete transactions.
    queue_.Close();
    writer.join();
    stats_.reader_blocked_ns.store(absl::ToInt64Nanoseconds(queue_.blocked()));
    absl::Status write = queue_.failure();
    LogToastFill();
    if (stream_ != nullptr && write.ok()) {
      // Final acknowledgement of what is now durable, confirmed by the walsender before the
      // connection closes: after a graceful stop the slot's position is the checkpoint.
      const Lsn persisted(stats_.persisted_lsn.load());
      if (read.ok()) {
        absl::Status s = stream_->Finish(persisted, absl::Seconds(5));
        if (!s.ok()) log_->warn("ending the replication stream: {}", s.ToString());
      } else {
        (void)stream_->SendStatus(persisted);  // the stream may be broken: best effort
      }
    }
    for (auto& d : destinations_) {
      absl::Status s = d->Close();
      if (!s.ok()) log_->warn("closing destination {}: {}", d->name(), s.ToString());
    }
    if (!write.ok()) return write;
    return read;
  }

 private:
  absl::StatusOr<Lsn> StartPosition() {
    const SourceSettings& src = options_.source;
    if (src.start_lsn.has_value()) {
      log_->info("flow {}: starting at {} (start_lsn overrides the checkpoint)",
                 options_.flow.value(), src.start_lsn->ToString());
      return *src.start_lsn;
    }
    if (checkpoints_ == nullptr) {
      log_->warn("flow {}: no checkpoint store; resuming from the slot's confirmed position",
                 options_.flow.value());
      return Lsn();
    }
    auto cp = checkpoints_->Get(options_.flow);
    if (cp.ok()) {
      log_->info("flow {}: resuming from checkpoint {}", options_.flow.value(), cp->lsn.ToString());
      stats_.persisted_lsn.store(cp->lsn.value());
      return cp->lsn;
    }
    if (cp.status().code() != absl::StatusCode::kNotFound) {
      return base::Annotate(cp.status(), "reading the flow's checkpoint");
    }
    log_->info("flow {}: no checkpoint yet; starting from the slot's confirmed position",
               options_.flow.value());
    return Lsn();
  }

  // --- writer thread -------------------------------------------------------------------------

  using PreparedFuture = std::future<absl::StatusOr<std::unique_ptr<Prepared>>>;

  // A batch between the queue and its write: destinations that prepare (encode) do so on their
  // own threads while earlier batches are written, so encoding uses a second core.
  struct InFlight {
    std::shared_ptr<const cdc::ChangeBatch> batch;
    // Per destination; not valid() for destinations that do not prepare.
    std::vector<PreparedFuture> prepared;
  };

  // A streamed transaction's batch staged by the destinations that stage, while the
  // transaction streams (Stage), carried on the batch to its delivery after the commit.
  // Destroyed unused (the transaction aborted, or rows of it had to be cut out): the futures
  // wait for their staging, whose results clean up after themselves.
  struct Staging final : cdc::StagedWork {
    std::vector<PreparedFuture> staged;  // per destination; not valid() if not staged
  };

  // The stager of SpeculativeStreams, on the reader thread: starts staging `unlabelled` on
  // threads of its own, at most prepare_ahead batches at a time (a batch finished while the
  // earlier ones are still staging is prepared after the commit, as usual: the reader never
  // waits for staging, and what staging holds in memory stays bounded).
  std::shared_ptr<cdc::StagedWork> Stage(const cdc::ChangeBatch& unlabelled) {
    if (staging_.load() >= std::max(1, options_.prepare_ahead)) {
      stats_.staging_skipped.fetch_add(1);
      return nullptr;
    }
    auto batch = std::make_shared<cdc::ChangeBatch>(unlabelled);  // shares the records
    batch->staged.reset();
    if (!options_.source.excluded_tables.empty()) DropExcluded(*batch);
    if (batch->empty()) return nullptr;
    auto work = std::make_shared<Staging>();
    work->staged.resize(destinations_.size());
    for (size_t i = 0; i < destinations_.size(); ++i) {
      Destination* d = destinations_[i].get();
      if (!d->prepares() || !d->stages()) continue;
      staging_.fetch_add(1);
      // The future keeps its function object until the commit: the batch is released here,
      // not with it (the transaction's batches may be spilled meanwhile).
      work->staged[i] = std::async(std::launch::async, [this, d, batch]() mutable {
        // Staging is work that can wait for the commit: at a lower priority it takes the CPU
        // the walsender and the reader leave (on two cores they need most of it), instead of
        // slowing the stream. A thread of its own (std::async), so nothing else inherits it.
        (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kStagingNice);
        absl::StatusOr<std::unique_ptr<Prepared>> staged = d->Stage(*batch);
        batch.reset();
        staging_.fetch_sub(1);
        return staged;
      });
    }
    return work;
  }

  // Prepare for destination `d`, from what it staged before the commit when it did.
  PreparedFuture StartPrepare(Destination* d, std::shared_ptr<const cdc::ChangeBatch> batch,
                              PreparedFuture staged) {
    return std::async(
        std::launch::async,
        [this, d, batch = std::move(batch),
         staged = std::move(staged)]() mutable -> absl::StatusOr<std::unique_ptr<Prepared>> {
          if (!staged.valid()) return d->Prepare(*batch);
          absl::StatusOr<std::unique_ptr<Prepared>> result = staged.get();
          if (result.ok()) result = d->PrepareStaged(*batch, std::move(*result));
          if (result.ok()) {
            stats_.staged_batches.fetch_add(1);
            return result;
          }
          // Staging is an optimisation: whatever went wrong, the batch is prepared as usual
          // (and a real problem, such as a full disk, is reported from there).
          log_->warn(
              "destination {}: a streamed transaction's batch staged before its commit "
              "cannot be used ({}); preparing it now",
              d->name(), result.status().ToString());
          return d->Prepare(*batch);
        });
  }

  void WriteLoop() {
    const bool any_prepares = std::any_of(destinations_.begin(), destinations_.end(),
                                          [](const auto& d) { return d->prepares(); });
    const size_t window =
        any_prepares ? static_cast<size_t>(std::max(1, options_.prepare_ahead)) : 1;
    std::deque<InFlight> in_flight;
    bool done = false;
    while (true) {
      // Admit batches while the window has room: wait for one only when nothing is in flight.
      while (!done && in_flight.size() < window) {
        std::optional<cdc::ChangeBatch> batch;
        if (in_flight.empty()) {
          batch = queue_.Pop();
          done = !batch.has_value();
        } else {
          batch = queue_.TryPop(&done);
        }
        if (!batch.has_value()) break;
        absl::StatusOr<InFlight> admitted = Admit(std::move(*batch));
        if (!admitted.ok()) return Fail(admitted.status());
        in_flight.push_back(std::move(*admitted));
      }
      if (in_flight.empty()) return;
      InFlight next = std::move(in_flight.front());
      in_flight.pop_front();
      absl::Status s = WriteOne(next);
      if (!s.ok()) return Fail(std::move(s));  // in_flight's preparations finish and clean up
    }
  }

  void Fail(absl::Status s) {
    log_->error("flow {}: {}", options_.flow.value(), s.ToString());
    queue_.Fail(std::move(s));
  }

  absl::StatusOr<InFlight> Admit(cdc::ChangeBatch batch) {
    // toast_fill=source: re-read unchanged TOAST values before any destination sees the batch.
    if (toast_source_ != nullptr && !batch.empty()) DS_RETURN_IF_ERROR(toast_source_->Fill(batch));
    InFlight f;
    f.batch = std::make_shared<const cdc::ChangeBatch>(std::move(batch));
    f.prepared.resize(destinations_.size());
    if (f.batch->empty()) return f;
    auto* staging = dynamic_cast<Staging*>(f.batch->staged.get());
    for (size_t i = 0; i < destinations_.size(); ++i) {
      Destination* d = destinations_[i].get();
      if (!d->prepares()) continue;
      f.prepared[i] = StartPrepare(
          d, f.batch, staging != nullptr ? std::move(staging->staged[i]) : PreparedFuture());
    }
    return f;
  }

  absl::Status WriteOne(InFlight& f) {
    const cdc::ChangeBatch& batch = *f.batch;
    if (!batch.empty()) {
      for (size_t i = 0; i < destinations_.size(); ++i) {
        Destination& d = *destinations_[i];
        absl::Status s;
        if (f.prepared[i].valid()) {
          absl::StatusOr<std::unique_ptr<Prepared>> prepared = f.prepared[i].get();
          s = prepared.ok() ? d.WritePrepared(batch, std::move(*prepared)) : prepared.status();
        } else {
          s = d.Write(batch);
        }
        if (!s.ok()) return base::Annotate(s, absl::StrCat("write destination ", d.name()));
      }
    }
    if (batch.checkpoint.valid()) {
      if (checkpoints_ != nullptr) {
        store::Checkpoint cp;
        cp.lsn = batch.checkpoint;
        cp.generation = options_.generation;
        absl::Status s = checkpoints_->Put(options_.flow, cp);
        if (!s.ok()) return base::Annotate(s, "persisting the checkpoint");
      }
      stats_.persisted_lsn.store(batch.checkpoint.value());
      const uint64_t one = 1;
      (void)::write(wake_fd_, &one, sizeof one);  // the reader acknowledges it now
    }
    stats_.rows_written.fetch_add(batch.num_rows());
    stats_.batches_written.fetch_add(batch.empty() ? 0 : 1);
    return absl::OkStatus();
  }

  // --- reader (calling thread) ---------------------------------------------------------------

  absl::Status ReadLoop(const std::atomic<bool>& stop, Lsn start) {
    Lsn resume = start;
    absl::Duration backoff = absl::Milliseconds(200);
    while (!stop.load()) {
      absl::Status s = Session(stop, resume);
      if (s.ok()) return s;
      if (!base::IsRetriable(s) || !queue_.failure().ok()) {
        if (builder_ != nullptr) {
          builder_->DiscardOpenTransaction();
          (void)builder_->Flush();
        }
        return s;
      }
      stats_.reconnects.fetch_add(1);
      log_->warn("flow {}: replication connection lost ({}); reconnecting in {}",
                 options_.flow.value(), s.ToString(), absl::FormatDuration(backoff));
      if (assembler_ != nullptr) assembler_->Reset();  // the server resends open transactions
      stream_.reset();
      SleepUnlessStopped(backoff, stop);
      backoff = std::min(backoff * 2, options_.source.reconnect_backoff_max);
      // Everything up to the last complete transaction we hold (queued or pending) is ours.
      if (builder_ != nullptr && builder_->committed() > resume) resume = builder_->committed();
    }
    if (builder_ != nullptr) {
      builder_->DiscardOpenTransaction();
      return builder_->Flush();
    }
    return absl::OkStatus();
  }

  absl::Status Connect(Lsn resume) {
    const SourceSettings& src = options_.source;
    DS_ASSIGN_OR_RETURN(sql_, postgres::Connection::Connect(src.dsn));
    DS_ASSIGN_OR_RETURN(auto repl, postgres::Connection::Connect(
                                       src.dsn, postgres::Connection::Mode::kReplication));
    if (src.ensure_publication) {
      DS_RETURN_IF_ERROR(postgres::EnsurePublication(*sql_, src.publication, src.publication_tables,
                                                     src.publication_schemas));
    }
    DS_ASSIGN_OR_RETURN(postgres::SlotState slot,
                        postgres::EnsureSlot(*sql_, *repl, src.slot, src.create_slot));
    if (slot.created) log_->info("created replication slot {}", src.slot);
    if (resume.valid() && slot.confirmed_flush > resume) {
      log_->warn(
          "slot {} was confirmed up to {}, past the checkpoint {}: the server no longer holds the "
          "changes in between (was the slot advanced by hand?)",
          src.slot, slot.confirmed_flush.ToString(), resume.ToString());
    }
    if (first_session_) {
      first_session_ = false;
      WarnAboutIdentityNothing();
    }
    postgres::ProtocolOptions protocol =
        postgres::ProtocolOptions::ForServer(sql_->server_version());
    protocol.binary = protocol.binary && src.binary;
    protocol.messages = protocol.messages && src.messages;
    resolver_ = postgres::TypeResolver::Create(*sql_);
    if (builder_ == nullptr) {
      cdc::BuilderOptions bo;
      bo.batch_rows = src.batch_rows;
      bo.max_batch_bytes = src.max_batch_bytes;
      bo.toast_fill_from_before = src.toast_fill != ToastFill::kNone;
      if (src.toast_fill == ToastFill::kCache) bo.toast_cache_bytes = src.toast_cache_bytes;
      // The lookup goes through resolver_, which is replaced on reconnect.
      builder_ = std::make_unique<cdc::BatchBuilder>(
          bo, [this](Oid oid) { return resolver_->Lookup(oid); },
          [this](cdc::ChangeBatch batch) {
            if (!options_.source.excluded_tables.empty()) DropExcluded(batch);
            return queue_.Push(std::move(batch), options_.source.status_interval,
                               [this] { StatusWhileBlocked(); });
          });
      buffer_ = std::make_unique<cdc::TxnBuffer>(src.stream_buffer_bytes, src.spill_dir);
      if (src.speculative_streams && src.toast_fill != ToastFill::kCache) {
        speculative_ = std::make_unique<cdc::SpeculativeStreams>(
            bo, [this](Oid oid) { return resolver_->Lookup(oid); }, src.stream_buffer_bytes,
            src.spill_dir);
        // Not with toast_fill=source, which changes a batch after the builder (Admit).
        const bool any_stages =
            std::any_of(destinations_.begin(), destinations_.end(),
                        [](const auto& d) { return d->prepares() && d->stages(); });
        if (any_stages && toast_source_ == nullptr) {
          speculative_->set_stager(
              [this](const cdc::ChangeBatch& unlabelled) { return Stage(unlabelled); });
        }
      }
      assembler_ = std::make_unique<cdc::TransactionAssembler>(
          protocol.proto_version, protocol.streaming == "parallel", *builder_, *buffer_,
          speculative_.get());
    }
    builder_->StartAt(resume);
    DS_ASSIGN_OR_RETURN(stream_, postgres::ReplicationStream::Start(
                                     std::move(repl), src.slot, src.publication, resume, protocol));
    log_->info("flow {}: streaming slot {} publication {} from {} (protocol v{}{}{})",
               options_.flow.value(), src.slot, src.publication,
               resume.valid() ? resume.ToString()
                              : absl::StrCat("slot position ", slot.confirmed_flush.ToString()),
               protocol.proto_version, protocol.binary ? ", binary" : "",
               protocol.streaming.empty() ? "" : absl::StrCat(", streaming ", protocol.streaming));
    const Lsn persisted(stats_.persisted_lsn.load());
    if (persisted.valid()) DS_RETURN_IF_ERROR(stream_->SendStatus(persisted));
    last_sent_ = persisted;
    return absl::OkStatus();
  }

  // The reader waits for the writer (a destination slower than the source): nobody reads the
  // socket, so the walsender's keepalive requests go unanswered and after wal_sender_timeout
  // (60 s by default) it would drop the connection. A status update is a reply; it also
  // acknowledges what the writer persisted meanwhile.
  void StatusWhileBlocked() {
    if (stream_ == nullptr) return;
    const Lsn persisted(stats_.persisted_lsn.load());
    absl::Status s = stream_->SendStatus(persisted);
    if (!s.ok()) {
      log_->debug("status update while waiting for the writer: {}", s.ToString());
      return;  // the next read reports the broken connection
    }
    last_sent_ = persisted;
  }

  void DropExcluded(cdc::ChangeBatch& batch) const {
    const auto& excluded = options_.source.excluded_tables;
    // Per batch, without building "schema.table" strings.
    std::erase_if(batch.relations, [&](const cdc::RelationChanges& r) {
      return std::any_of(excluded.begin(), excluded.end(), [&](const std::string& name) {
        return name.size() == r.schema.size() + 1 + r.table.size() &&
               absl::StartsWith(name, r.schema) && name[r.schema.size()] == '.' &&
               absl::EndsWith(name, r.table);
      });
    });
  }

  void LogToastFill() const {
    if (toast_source_ != nullptr) {
      const ToastSource::Stats& s = toast_source_->stats();
      log_->info(
          "flow {}: toast_fill=source filled {} unchanged values ({} queries), {} left "
          "unchanged (row gone or key not expressible)",
          options_.flow.value(), s.filled, s.queries, s.missing);
    } else if (builder_ != nullptr && options_.source.toast_fill == ToastFill::kCache) {
      const cdc::ToastCache* cache = builder_->toast_cache();
      if (cache == nullptr) return;  // toast_cache_bytes 0
      log_->info(
          "flow {}: toast_fill=cache filled {} unchanged values; cache holds {} rows in {} "
          "of {} bytes, {} evicted",
          options_.flow.value(), builder_->toast_filled(), cache->rows(), cache->bytes(),
          cache->max_bytes(), cache->evictions());
    }
  }

  void WarnAboutIdentityNothing() {
    const std::vector<std::optional<std::string>> params = {options_.source.publication};
    auto r = sql_->ExecParams(
        "SELECT pt.schemaname || '.' || pt.tablename FROM pg_publication_tables pt "
        "JOIN pg_namespace n ON n.nspname = pt.schemaname "
        "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
        "WHERE pt.pubname = $1 AND c.relreplident = 'n'",
        params, /*binary_results=*/false);
    if (!r.ok()) {
      log_->warn("could not check replica identities: {}", r.status().ToString());
      return;
    }
    for (int i = 0; i < postgres::RowCount(*r); ++i) {
      log_->warn(
          "published table {} has REPLICA IDENTITY NOTHING: its UPDATEs and DELETEs will fail "
          "in PostgreSQL; add a primary key or ALTER TABLE ... REPLICA IDENTITY FULL",
          std::string(*postgres::GetValue(*r, i, 0)));
    }
  }

  // One connected session: returns OK on stop or max_empty_reads, an error otherwise.
  absl::Status Session(const std::atomic<bool>& stop, Lsn resume) {
    DS_RETURN_IF_ERROR(Connect(resume));
    const SourceSettings& src = options_.source;
    absl::Time now = absl::Now();
    absl::Time period_start = now, last_status = now, last_heartbeat = now;
    std::optional<absl::Time> pending_since;
    bool data_in_period = false;
    int empty_reads = 0;
    int unclocked = 0;  // messages since `now` was read
    while (!stop.load()) {
      DS_RETURN_IF_ERROR(queue_.failure());
      // Wakes up for data, for a checkpoint the writer persisted (acknowledged at once) and
      // when the pending batch is due.
      absl::Duration wait = absl::Milliseconds(100);
      if (pending_since.has_value()) {
        wait = std::clamp(*pending_since + src.batch_timeout - now, absl::Milliseconds(1), wait);
      }
      DS_ASSIGN_OR_RETURN(auto next, stream_->Next(wait, wake_fd_));
      // Reading the clock per message costs ~2 % of a big transaction: messages libpq already
      // held take microseconds, so the clock is read after a wait and every 64 messages.
      if (!next.has_value() || next->waited || ++unclocked >= 64) {
        now = absl::Now();
        unclocked = 0;
      }
      if (next.has_value()) {
        data_in_period = true;
        DS_RETURN_IF_ERROR(assembler_->Process(next->wal_start, next->payload));
        stats_.spilled_bytes.store(
            buffer_->spilled_bytes_total() +
            (speculative_ != nullptr ? speculative_->spilled_bytes_total() : 0));
      }
      if (builder_->has_pending() && !builder_->in_transaction()) {
        if (!pending_since.has_value()) pending_since = now;
        if (now - *pending_since >= src.batch_timeout) {
          // The batch's checkpoint covers what the server has sent since the last commit too:
          // at the end of a burst the slot reaches the server's position with this batch rather
          // than with the idle advance below, a period later.
          DS_RETURN_IF_ERROR(builder_->FlushThrough(
              assembler_->has_open_streams() ? Lsn() : stream_->server_wal_end()));
          pending_since.reset();
        }
      } else if (!builder_->has_pending()) {
        pending_since.reset();
      }
      if (now - period_start >= src.batch_timeout) {
        if (data_in_period) {
          empty_reads = 0;
        } else {
          ++empty_reads;
          if (!builder_->in_transaction() && !assembler_->has_open_streams() &&
              !builder_->has_pending()) {
            DS_RETURN_IF_ERROR(builder_->AdvanceIdle(stream_->server_wal_end()));
          }
          if (options_.max_empty_reads > 0 && empty_reads >= options_.max_empty_reads &&
              !builder_->in_transaction()) {
            log_->info("flow {}: {} empty reads in a row; stopping", options_.flow.value(),
                       empty_reads);
            DS_RETURN_IF_ERROR(builder_->Flush());
            return absl::OkStatus();
          }
        }
        period_start = now;
        data_in_period = false;
      }
      const Lsn persisted(stats_.persisted_lsn.load());
      if (persisted > last_sent_ || now - last_status >= src.status_interval) {
        DS_RETURN_IF_ERROR(stream_->SendStatus(persisted));
        last_sent_ = persisted;
        last_status = now;
      }
      if (src.heartbeat_interval > absl::ZeroDuration() &&
          now - last_heartbeat >= src.heartbeat_interval) {
        last_heartbeat = now;
        auto r = sql_->Exec(
            "SELECT pg_logical_emit_message(false, 'ductstream.heartbeat', now()::text)");
        if (!r.ok()) log_->warn("heartbeat failed: {}", r.status().ToString());
      }
    }
    return absl::OkStatus();
  }

  PipelineOptions options_;
  std::vector<std::unique_ptr<Destination>> destinations_;
  store::CheckpointStore* checkpoints_;
  PipelineStats& stats_;
  // Stage calls running. Declared before queue_ and speculative_, whose staged batches wait for
  // them when dropped.
  std::atomic<int> staging_{0};
  BatchQueue queue_;
  std::unique_ptr<ToastSource> toast_source_;  // toast_fill=source; used by the writer thread
  std::shared_ptr<spdlog::logger> log_;

  bool first_session_ = true;
  std::unique_ptr<postgres::Connection> sql_;
  std::unique_ptr<postgres::TypeResolver> resolver_;
  std::unique_ptr<postgres::ReplicationStream> stream_;
  std::unique_ptr<cdc::BatchBuilder> builder_;
  std::unique_ptr<cdc::TxnBuffer> buffer_;
  std::unique_ptr<cdc::SpeculativeStreams> speculative_;
  std::unique_ptr<cdc::TransactionAssembler> assembler_;
  Lsn last_sent_;
  int wake_fd_ = -1;  // eventfd: the writer persisted a checkpoint
};

Pipeline::Pipeline(PipelineOptions options, std::vector<std::unique_ptr<Destination>> destinations,
                   store::CheckpointStore* checkpoints)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(destinations), checkpoints,
                                   stats_)) {}

Pipeline::~Pipeline() = default;

absl::Status Pipeline::Run(const std::atomic<bool>& stop) { return impl_->Run(stop); }

}  // namespace ductstream::runner
