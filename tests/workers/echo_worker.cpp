// A pool worker in C++ speaking the JSON-lines protocol of SPEC §6, for tests
// and as an example of a native worker. Same input keys as echo_worker.py:
// echo, sleep, progress, stderr, error, crash. The result is
// {"echo": ..., "pid": <worker pid>, "served": <tasks so far>}.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

int main() {
  std::ios::sync_with_stdio(false);
  using nlohmann::json;
  long served = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    json req = json::parse(line, nullptr, false);
    if (req.is_discarded() || !req.is_object() || !req.contains("id")) {
      std::cerr << "echo_worker: not a request: " << line << "\n";
      continue;
    }
    const json id = req["id"];
    json input = req.value("input", json::object());
    if (!input.is_object()) input = json{{"echo", input}};
    ++served;
    if (auto it = input.find("stderr"); it != input.end() && it->is_string()) std::cerr << it->get<std::string>() << std::flush;
    const int steps = input.value("progress", 0);
    for (int i = 1; i <= steps; ++i) {
      std::cout << json{{"id", id}, {"progress", {{"current", i}, {"total", steps}, {"message", "step " + std::to_string(i)}}}}.dump()
                << "\n" << std::flush;
    }
    if (double s = input.value("sleep", 0.0); s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(s));
    if (auto it = input.find("crash"); it != input.end()) std::_Exit(it->is_number_integer() ? it->get<int>() : 1);
    if (auto it = input.find("error"); it != input.end()) {
      std::cout << json{{"id", id}, {"error", {{"message", it->is_string() ? it->get<std::string>() : it->dump()}}}}.dump() << "\n"
                << std::flush;
      continue;
    }
    json result{{"echo", input.contains("echo") ? input["echo"] : json()}, {"pid", ::getpid()}, {"served", served}};
    std::cout << json{{"id", id}, {"result", result}}.dump() << "\n" << std::flush;
  }
  return 0;
}
