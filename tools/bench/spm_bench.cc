// spm_bench.cc - SentencePiece's own C++ encoder (Debian's libsentencepiece) timed on a
// corpus, the reference side of `t5 bench tokenizer`. Reads every line into memory,
// then encodes them all to ids with SentencePieceProcessor::Encode on one thread, best
// of REPEAT runs (with ALPHA: SampleEncode(line, -1, ALPHA), sampling from the lattice). Prints key=value lines: load_ms, bytes, lines, seconds, checksum
// (FNV-1a over every id and line end, the same as cmd_bench_tokenizer.c computes).
// Not part of the service; built by `make` as $(BUILD)/spm_bench.
#include <sentencepiece_processor.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

int main(int argc, char **argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: spm_bench MODEL CORPUS [REPEAT [ALPHA]]\n");
    return 2;
  }
  int repeat = argc > 3 ? std::atoi(argv[3]) : 3;
  if (repeat < 1) repeat = 1;
  const bool sample = argc > 4;
  const float alpha = sample ? std::strtof(argv[4], nullptr) : 0.0f;
  std::ifstream in(argv[2], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "spm_bench: cannot read the corpus\n");
    return 1;
  }
  std::vector<std::string> lines;
  size_t bytes = 0;
  for (std::string l; std::getline(in, l);) {
    bytes += l.size();
    lines.push_back(std::move(l));
  }
  using clk = std::chrono::steady_clock;
  double load_ms = 1e30;
  sentencepiece::SentencePieceProcessor sp;
  for (int i = 0; i < 5; i++) {
    sentencepiece::SentencePieceProcessor tmp;
    auto t0 = clk::now();
    auto st = tmp.Load(argv[1]);
    double ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
    if (!st.ok()) {
      std::fprintf(stderr, "spm_bench: %s\n", st.ToString().c_str());
      return 1;
    }
    if (ms < load_ms) load_ms = ms;
  }
  if (!sp.Load(argv[1]).ok()) return 1;
  double best = 1e30;
  uint64_t h = 0;
  std::vector<int> ids;
  for (int r = 0; r < repeat; r++) {
    h = 1469598103934665603ull;
    auto t0 = clk::now();
    for (const auto &l : lines) {
      if (sample)
        sp.SampleEncode(l, -1, alpha, &ids);
      else
        sp.Encode(l, &ids);
      for (int id : ids) h = (h ^ (uint64_t)(uint32_t)id) * 1099511628211ull;
      h = (h ^ 0xffffffffull) * 1099511628211ull;
    }
    double s = std::chrono::duration<double>(clk::now() - t0).count();
    if (s < best) best = s;
  }
  std::printf("load_ms=%.3f\nbytes=%zu\nlines=%zu\nseconds=%.6f\nchecksum=%016llx\n", load_ms, bytes,
              lines.size(), best, (unsigned long long)h);
  return 0;
}
