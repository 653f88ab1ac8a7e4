#include "common/result.h"

namespace orch {

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "invalid_argument";
    case ErrorCode::NotFound: return "not_found";
    case ErrorCode::QueueFull: return "queue_full";
    case ErrorCode::Conflict: return "conflict";
    case ErrorCode::Forbidden: return "forbidden";
    case ErrorCode::Unavailable: return "unavailable";
    case ErrorCode::Io: return "io";
    case ErrorCode::Internal: return "internal";
  }
  return "internal";
}

}  // namespace orch
