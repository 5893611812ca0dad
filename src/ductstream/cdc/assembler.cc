#include "ductstream/cdc/assembler.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "ductstream/base/status.h"

namespace ductstream::cdc {

namespace pgo = postgres::pgoutput;

namespace {

// Puts a replay decoder into "inside a streamed segment" state (data messages then carry their
// xid) by feeding it a Stream Start message; this handler swallows that one callback.
class SegmentOpener final : public pgo::Handler {
 public:
  absl::Status OnBegin(const pgo::BeginMessage&) override { return Unexpected(); }
  absl::Status OnCommit(const pgo::CommitMessage&) override { return Unexpected(); }
  absl::Status OnOrigin(const pgo::OriginMessage&) override { return Unexpected(); }
  absl::Status OnRelation(const pgo::RelationMessage&) override { return Unexpected(); }
  absl::Status OnType(const pgo::TypeMessage&) override { return Unexpected(); }
  absl::Status OnInsert(const pgo::InsertMessage&) override { return Unexpected(); }
  absl::Status OnUpdate(const pgo::UpdateMessage&) override { return Unexpected(); }
  absl::Status OnDelete(const pgo::DeleteMessage&) override { return Unexpected(); }
  absl::Status OnTruncate(const pgo::TruncateMessage&) override { return Unexpected(); }
  absl::Status OnMessage(const pgo::LogicalMessage&) override { return Unexpected(); }
  absl::Status OnStreamStart(const pgo::StreamStartMessage&) override { return absl::OkStatus(); }
  absl::Status OnStreamStop() override { return Unexpected(); }
  absl::Status OnStreamCommit(const pgo::StreamCommitMessage&) override { return Unexpected(); }
  absl::Status OnStreamAbort(const pgo::StreamAbortMessage&) override { return Unexpected(); }

 private:
  static absl::Status Unexpected() {
    return absl::InternalError("unexpected message while opening a replay segment");
  }
};

std::string StreamStartBytes(Xid xid) {
  std::string m = "S";
  for (int shift = 24; shift >= 0; shift -= 8) {
    m.push_back(static_cast<char>(xid.value() >> shift));
  }
  m.push_back('\1');  // first segment
  return m;
}

}  // namespace

TransactionAssembler::TransactionAssembler(int protocol_version, bool parallel_streaming,
                                           BatchBuilder& builder, TxnBuffer& buffer,
                                           SpeculativeStreams* speculative)
    : protocol_version_(protocol_version),
      parallel_streaming_(parallel_streaming),
      builder_(builder),
      buffer_(buffer),
      speculative_(speculative),
      decoder_(protocol_version, parallel_streaming) {}

void TransactionAssembler::Reset() {
  decoder_ = pgo::Decoder(protocol_version_, parallel_streaming_);
  buffer_.Clear();
  if (speculative_ != nullptr) speculative_->Clear();
  builder_.DiscardOpenTransaction();
}

absl::Status TransactionAssembler::Process(Lsn wal_start, absl::string_view message) {
  if (message.empty()) return absl::InvalidArgumentError("empty pgoutput message");
  if (decoder_.in_stream() && IsStreamedDataMessage(message[0])) {
    if (speculative_ != nullptr) {
      return speculative_->Process(stream_xid_, wal_start, message, decoder_);
    }
    return buffer_.Append(stream_xid_, wal_start, message);
  }
  builder_.set_message_lsn(wal_start);
  return decoder_.Decode(message, *this);
}

absl::Status TransactionAssembler::OnStreamStart(const pgo::StreamStartMessage& msg) {
  stream_xid_ = msg.xid;
  return absl::OkStatus();
}

absl::Status TransactionAssembler::OnStreamStop() { return absl::OkStatus(); }

absl::Status TransactionAssembler::OnStreamAbort(const pgo::StreamAbortMessage& msg) {
  if (speculative_ != nullptr) speculative_->Abort(msg.xid, msg.subxid);
  return buffer_.Abort(msg.xid, msg.subxid);
}

absl::Status TransactionAssembler::OnStreamCommit(const pgo::StreamCommitMessage& msg) {
  if (speculative_ != nullptr && speculative_->Contains(msg.xid)) {
    // The transactions committed before it go first, as their own batch.
    DS_RETURN_IF_ERROR(builder_.Flush());
    // The builder learns the relations the transaction described: the server will not send
    // them again for later transactions.
    pgo::Decoder replay(protocol_version_, parallel_streaming_);
    SegmentOpener opener;
    DS_RETURN_IF_ERROR(replay.Decode(StreamStartBytes(msg.xid), opener));
    return speculative_->Commit(
        msg, [&](absl::string_view relation) { return replay.Decode(relation, builder_); },
        [&](ChangeBatch batch) { return builder_.Forward(std::move(batch)); });
  }
  pgo::BeginMessage begin;
  begin.final_lsn = msg.commit_lsn;
  begin.commit_time = msg.commit_time;
  begin.xid = msg.xid;
  DS_RETURN_IF_ERROR(builder_.OnBegin(begin));

  pgo::Decoder replay(protocol_version_, parallel_streaming_);
  SegmentOpener opener;
  DS_RETURN_IF_ERROR(replay.Decode(StreamStartBytes(msg.xid), opener));
  DS_RETURN_IF_ERROR(buffer_.Commit(msg.xid, [&](Lsn lsn, absl::string_view m) {
    builder_.set_message_lsn(lsn);
    return replay.Decode(m, builder_);
  }));

  pgo::CommitMessage commit;
  commit.flags = msg.flags;
  commit.commit_lsn = msg.commit_lsn;
  commit.end_lsn = msg.end_lsn;
  commit.commit_time = msg.commit_time;
  return builder_.OnCommit(commit);
}

absl::Status TransactionAssembler::OnBegin(const pgo::BeginMessage& m) {
  return builder_.OnBegin(m);
}
absl::Status TransactionAssembler::OnCommit(const pgo::CommitMessage& m) {
  return builder_.OnCommit(m);
}
absl::Status TransactionAssembler::OnOrigin(const pgo::OriginMessage& m) {
  return builder_.OnOrigin(m);
}
absl::Status TransactionAssembler::OnRelation(const pgo::RelationMessage& m) {
  return builder_.OnRelation(m);
}
absl::Status TransactionAssembler::OnType(const pgo::TypeMessage& m) { return builder_.OnType(m); }
absl::Status TransactionAssembler::OnInsert(const pgo::InsertMessage& m) {
  return builder_.OnInsert(m);
}
absl::Status TransactionAssembler::OnUpdate(const pgo::UpdateMessage& m) {
  return builder_.OnUpdate(m);
}
absl::Status TransactionAssembler::OnDelete(const pgo::DeleteMessage& m) {
  return builder_.OnDelete(m);
}
absl::Status TransactionAssembler::OnTruncate(const pgo::TruncateMessage& m) {
  return builder_.OnTruncate(m);
}
absl::Status TransactionAssembler::OnMessage(const pgo::LogicalMessage& m) {
  // A non-transactional message (a heartbeat) arrives outside any transaction.
  if (!builder_.in_transaction()) return absl::OkStatus();
  return builder_.OnMessage(m);
}

}  // namespace ductstream::cdc
