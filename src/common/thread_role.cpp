#include "common/thread_role.h"

namespace kvs {
namespace {

thread_local ThreadRole current_role = ThreadRole::kOther;

}  // namespace

void SetThreadRole(ThreadRole role) {
    current_role = role;
}

ThreadRole CurrentThreadRole() {
    return current_role;
}

const char* ThreadRoleName(ThreadRole role) {
    switch (role) {
        case ThreadRole::kOther:
            return "other";
        case ThreadRole::kEngine:
            return "engine";
        case ThreadRole::kStoreWriter:
            return "store writer";
        case ThreadRole::kSnapshotWriter:
            return "snapshot writer";
    }
    return "unknown";
}

}  // namespace kvs
