// Test doubles for the MCP layer: a MessageSink that records what was sent
// (parsed back), and an executor that runs each job on a thread of its own.
#pragma once

#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mcp/dispatcher.h"
#include "tests/support/wait_until.h"
#include "transport/connection.h"

namespace orch::test {

// Everything sent to the peer, parsed back.
class Wire {
 public:
  transport::MessageSink sink() {
    return [this](std::string_view text) {
      EXPECT_EQ(text.find('\n'), std::string_view::npos);
      std::lock_guard lock(mu_);
      messages_.push_back(nlohmann::json::parse(text));
      return true;
    };
  }
  std::vector<nlohmann::json> messages() const {
    std::lock_guard lock(mu_);
    return messages_;
  }
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return messages_.size();
  }
  nlohmann::json reply(const nlohmann::json& id) const {
    std::lock_guard lock(mu_);
    for (const auto& m : messages_) {
      if (m.contains("id") && m.at("id") == id && !m.contains("method")) return m;
    }
    return nlohmann::json();
  }
  nlohmann::json wait_reply(const nlohmann::json& id) const {
    nlohmann::json found;
    wait_until([&] { return !(found = reply(id)).is_null(); }, std::chrono::seconds(20));
    return found;
  }
  std::vector<nlohmann::json> notifications(std::string_view method) const {
    std::lock_guard lock(mu_);
    std::vector<nlohmann::json> found;
    for (const auto& m : messages_) {
      if (m.value("method", "") == method) found.push_back(m);
    }
    return found;
  }
  // Index of the first message matching, or -1.
  int index_of_reply(const nlohmann::json& id) const {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < messages_.size(); ++i) {
      const auto& m = messages_[i];
      if (m.contains("id") && m.at("id") == id && !m.contains("method")) return static_cast<int>(i);
    }
    return -1;
  }

 private:
  mutable std::mutex mu_;
  std::vector<nlohmann::json> messages_;
};

// One thread per job, joined by the destructor; can be told to refuse.
class ThreadPerJob {
 public:
  ~ThreadPerJob() {
    std::vector<std::jthread> threads;
    {
      std::lock_guard lock(mu_);
      threads = std::move(threads_);
    }
  }
  mcp::Executor executor() {
    return [this](std::function<void()> job) {
      std::lock_guard lock(mu_);
      if (refuse_) return false;
      threads_.emplace_back(std::move(job));
      return true;
    };
  }
  void refuse(bool refuse) {
    std::lock_guard lock(mu_);
    refuse_ = refuse;
  }

 private:
  std::mutex mu_;
  bool refuse_ = false;
  std::vector<std::jthread> threads_;
};

}  // namespace orch::test
