#include "tests/support/process_probe.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace orch::test {

namespace {

struct Stat {
  char state = '?';
  pid_t ppid = 0;
  pid_t pgrp = 0;
};

bool read_stat(pid_t pid, Stat& out) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return false;
  // The command name may hold spaces and parentheses: parse after the last ')'.
  auto close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(text.substr(close + 2));
  rest >> out.state >> out.ppid >> out.pgrp;
  return static_cast<bool>(rest);
}

template <typename Pred>
std::vector<pid_t> scan(Pred pred) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::atoi(name.c_str()));
    Stat st;
    if (read_stat(pid, st) && st.state != 'Z' && st.state != 'X' && pred(st)) found.push_back(pid);
  }
  return found;
}

}  // namespace

std::vector<pid_t> all_processes() {
  return scan([](const Stat&) { return true; });
}

std::string process_cmdline(pid_t pid) {
  // Plain read(2): a process that exits mid-read makes it fail with ESRCH,
  // which libstdc++'s filebuf turns into an exception.
  const int fd = ::open(("/proc/" + std::to_string(pid) + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

bool process_alive(pid_t pid) {
  Stat st;
  return read_stat(pid, st) && st.state != 'Z' && st.state != 'X';
}

std::vector<pid_t> processes_in_group(pid_t pgid) {
  return scan([pgid](const Stat& st) { return st.pgrp == pgid; });
}

std::vector<pid_t> children_of(pid_t ppid) {
  return scan([ppid](const Stat& st) { return st.ppid == ppid; });
}

}  // namespace orch::test
