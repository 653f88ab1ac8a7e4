#include "engine/allow_list.h"

#include <filesystem>
#include <sstream>

#include "engine/process_spawn.h"

namespace orch::engine {

namespace {

namespace fs = std::filesystem;

// The file a path really is: symlinks and ".." resolved. Empty when it does
// not exist (then nothing can match it).
std::string real_path(const fs::path& p) {
  std::error_code ec;
  fs::path real = fs::canonical(p, ec);
  return ec ? std::string() : real.string();
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// Inside `dir` or `dir` itself, by whole path components.
bool is_within(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

}  // namespace

Result<AllowList> AllowList::create(const std::vector<std::string>& commands, const std::vector<std::string>& dirs,
                                    const std::string& server_path) {
  AllowList list;
  list.any_command_ = false;
  const std::vector<std::string> env{"PATH=" + server_path};
  for (const std::string& entry : commands) {
    if (entry == "*") {
      list.any_command_ = true;
      continue;
    }
    if (entry.empty() || (entry.find('/') != std::string::npos && entry.front() != '/')) {
      return make_error(ErrorCode::InvalidArgument,
                        "\"" + entry + "\" is neither a program name nor an absolute path");
    }
    list.names_.push_back(entry);
    if (entry.front() == '/') {
      if (auto real = real_path(entry); !real.empty()) list.programs_.insert(real);
      continue;
    }
    // Every match on the PATH, not only the first: the task's own PATH may
    // pick another directory's copy of the same name.
    std::stringstream dirs_on_path(server_path);
    std::string dir;
    while (std::getline(dirs_on_path, dir, ':')) {
      if (dir.empty() || dir.front() != '/') continue;
      if (auto found = resolve_executable(dir + "/" + entry, env); found) {
        if (auto real = real_path(*found); !real.empty()) list.programs_.insert(real);
      }
    }
  }
  for (const std::string& d : dirs) {
    if (d.empty() || d.front() != '/') {
      return make_error(ErrorCode::InvalidArgument, "\"" + d + "\" is not an absolute directory");
    }
    auto real = real_path(d);
    // A directory that does not exist yet allows nothing until it does;
    // keeping its lexical form is as strict as dropping it.
    list.dirs_.push_back(real.empty() ? fs::path(d).lexically_normal().string() : real);
  }
  return list;
}

Status AllowList::check(const TaskSpec& spec, const std::vector<std::string>& env,
                        const std::string& server_cwd) const {
  const std::string cwd = spec.cwd.empty() ? server_cwd : spec.cwd;
  if (!dirs_.empty()) {
    const std::string real = real_path(cwd);
    bool inside = false;
    for (const auto& d : dirs_) inside = inside || (!real.empty() && is_within(real, d));
    if (!inside) {
      return make_error(ErrorCode::Forbidden, "cwd " + cwd + " is outside the allowed directories (" +
                                                  joined(dirs_) + "); run the task in one of them");
    }
  }
  if (any_command_) return {};
  for (const std::string& kv : env) {
    if (kv.starts_with("LD_") || kv.starts_with("DYLD_")) {
      return make_error(ErrorCode::Forbidden, "env " + kv.substr(0, kv.find('=')) +
                                                  " is not allowed: the server restricts commands "
                                                  "(security.allowCommands), and it would load other code");
    }
  }
  std::string program = spec.kind == TaskKind::Command ? "/bin/sh" : spec.argv.empty() ? "" : spec.argv.front();
  const std::string shown = spec.kind == TaskKind::Command ? "/bin/sh (the command form runs a shell)" : program;
  std::string real;
  if (program.find('/') != std::string::npos) {
    real = real_path(program.front() == '/' ? fs::path(program) : fs::path(cwd) / program);
  } else if (auto found = resolve_executable(program, env); found) {
    real = real_path(fs::path(*found).is_absolute() ? fs::path(*found) : fs::path(cwd) / *found);
  }
  if (!real.empty() && programs_.count(real)) return {};
  return make_error(ErrorCode::Forbidden,
                    "program " + shown + " is not allowed by security.allowCommands (allowed: " +
                        (names_.empty() ? std::string("nothing") : joined(names_)) + ")");
}

}  // namespace orch::engine
