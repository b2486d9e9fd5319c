// bench/parse: the worker's own extract_html() and Robots on one input,
// timed in this process (bench/parse/run starts one per input, under a time
// limit, so a page that takes minutes cannot stall the benchmark).
//
//   parse_bench page FILE PAGE_URL [RUNS] [--dump]
//       prints "bytes=B runs=R median_ms=M min_ms=M images=N links=N refused=TEXT";
//       --dump then lists the URLs found ("image URL", "link URL")
//   parse_bench robots FILE PATH [RUNS]
//       prints "bytes=B rules_ms=M allowed_ms=M allowed=0|1": Robots::parse
//       and one allowed(PATH), medians
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "crawler/extract.hpp"
#include "crawler/robots.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "parse_bench: cannot read %s\n", path);
    std::exit(2);
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Runs until `runs` are done, but stops early once 20 s have gone by: a slow
// page's median then rests on fewer runs (reported), and the child's time
// limit is left for the slow first run.
template <typename F>
std::vector<double> timed(int runs, F&& f) {
  std::vector<double> t;
  auto start = Clock::now();
  for (int i = 0; i < runs; ++i) {
    auto t0 = Clock::now();
    f();
    t.push_back(ms_since(t0));
    if (ms_since(start) > 20000) break;
  }
  return t;
}

int page(int argc, char** argv) {
  if (argc < 4) return 2;
  std::string html = read_file(argv[2]);
  std::string url = argv[3];
  int runs = argc > 4 && argv[4][0] != '-' ? std::atoi(argv[4]) : 5;
  bool dump = argc > 4 && std::string(argv[argc - 1]) == "--dump";
  crawler::Links links;
  auto t = timed(std::max(runs, 1), [&] { links = crawler::extract_html(html, url); });
  std::string refused = links.refused;
  std::replace(refused.begin(), refused.end(), '\n', ' ');
  std::printf("bytes=%zu runs=%zu median_ms=%.3f min_ms=%.3f images=%zu links=%zu refused=%s\n",
              html.size(), t.size(), median(t), *std::min_element(t.begin(), t.end()),
              links.images.size(), links.pages.size(), refused.c_str());
  if (dump) {
    for (const auto& u : links.images) std::printf("image %s\n", u.c_str());
    for (const auto& u : links.pages) std::printf("link %s\n", u.c_str());
  }
  return 0;
}

int robots(int argc, char** argv) {
  if (argc < 4) return 2;
  std::string text = read_file(argv[2]);
  std::string path = argv[3];
  int runs = argc > 4 ? std::atoi(argv[4]) : 5;
  crawler::Robots r = crawler::Robots::allow_all();
  auto tp = timed(std::max(runs, 1), [&] { r = crawler::Robots::parse(text, "crawler_ha"); });
  bool allowed = false;
  auto ta = timed(std::max(runs, 1), [&] { allowed = r.allowed(path); });
  std::printf("bytes=%zu runs=%zu parse_ms=%.3f allowed_ms=%.3f allowed=%d\n", text.size(), ta.size(),
              median(tp), median(ta), allowed ? 1 : 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  int rc = 2;
  if (mode == "page") rc = page(argc, argv);
  else if (mode == "robots") rc = robots(argc, argv);
  if (rc == 2)
    std::fprintf(stderr,
                 "usage: parse_bench page FILE PAGE_URL [RUNS] [--dump]\n"
                 "       parse_bench robots FILE PATH [RUNS]\n");
  return rc;
}
