// LSN parsing and printing sit on the checkpoint and status-update paths.
#include <benchmark/benchmark.h>

#include "ductstream/base/lsn.h"

namespace {

void BM_LsnParse(benchmark::State& state) {
  for (auto _ : state) {
    auto lsn = ductstream::Lsn::Parse("16/B374D848");
    benchmark::DoNotOptimize(lsn);
  }
}
BENCHMARK(BM_LsnParse);

void BM_LsnToString(benchmark::State& state) {
  ductstream::Lsn lsn((uint64_t{0x16} << 32) | 0xB374D848);
  for (auto _ : state) {
    std::string s = lsn.ToString();
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_LsnToString);

}  // namespace
