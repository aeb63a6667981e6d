#include "common/firewalld.h"

#include <systemd/sd-bus.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include "common/log.h"

namespace kohaku {

namespace {

constexpr const char* kName = "org.fedoraproject.FirewallD1";
constexpr const char* kPath = "/org/fedoraproject/FirewallD1";
constexpr const char* kZoneInterface = "org.fedoraproject.FirewallD1.zone";
constexpr const char* kTrusted = "trusted";
// A firewalld that hangs must not hold a daemon's thread for sd-bus's default 25 s.
constexpr uint64_t kCallTimeoutUsec = 5'000'000;

// A refusal by firewalld (or the bus): firewalld's error name and message.
class FirewalldError : public std::runtime_error {
 public:
  FirewalldError(const sd_bus_error& e, int r)
      : std::runtime_error(describe(e, r)), name_(e.name ? e.name : "") {}
  const std::string& name() const { return name_; }

 private:
  static std::string describe(const sd_bus_error& e, int r) {
    if (e.message != nullptr)
      return std::string(e.message) + (e.name ? " (" + std::string(e.name) + ")" : "");
    return std::strerror(-r);
  }
  std::string name_;
};

struct ErrorGuard {
  sd_bus_error e = SD_BUS_ERROR_NULL;
  ~ErrorGuard() { sd_bus_error_free(&e); }
};

struct MessageGuard {
  sd_bus_message* m = nullptr;
  ~MessageGuard() { sd_bus_message_unref(m); }
};

}  // namespace

// One connection to the system bus and the firewalld methods this project uses.
class FirewalldBus {
 public:
  // nullptr when there is no system bus to connect to (no dbus-daemon: no firewalld either).
  static std::unique_ptr<FirewalldBus> open() {
    sd_bus* bus = nullptr;
    // Honours $DBUS_SYSTEM_BUS_ADDRESS (the tests' private bus), else the standard socket.
    if (sd_bus_open_system(&bus) < 0) return nullptr;
    sd_bus_set_method_call_timeout(bus, kCallTimeoutUsec);
    return std::unique_ptr<FirewalldBus>(new FirewalldBus(bus));
  }
  ~FirewalldBus() { sd_bus_flush_close_unref(bus_); }

  // firewalld's unique bus name; nullopt when nobody owns its name. Throws when the bus fails.
  std::optional<std::string> owner() {
    ErrorGuard err;
    MessageGuard reply;
    int r =
        sd_bus_call_method(bus_, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "GetNameOwner", &err.e, &reply.m, "s", kName);
    if (r < 0) {
      if (sd_bus_error_has_name(&err.e, "org.freedesktop.DBus.Error.NameHasNoOwner"))
        return std::nullopt;
      throw FirewalldError(err.e, r);
    }
    dest_ = read_string(reply.m);
    return dest_;
  }

  std::string zone_of_interface(const std::string& interface) {
    return call_string("getZoneOfInterface", "s", interface.c_str());
  }
  void add_interface(const char* zone, const std::string& interface) {
    call_string("addInterface", "ss", zone, interface.c_str());
  }
  void change_zone_of_interface(const char* zone, const std::string& interface) {
    call_string("changeZoneOfInterface", "ss", zone, interface.c_str());
  }
  void remove_interface(const char* zone, const std::string& interface) {
    call_string("removeInterface", "ss", zone, interface.c_str());
  }
  // Zone "": the default zone.
  bool query_port(const std::string& port, const char* protocol) {
    ErrorGuard err;
    MessageGuard reply;
    int r = sd_bus_call_method(bus_, dest_.c_str(), kPath, kZoneInterface, "queryPort", &err.e,
                               &reply.m, "sss", "", port.c_str(), protocol);
    if (r < 0) throw FirewalldError(err.e, r);
    int yes = 0;
    r = sd_bus_message_read(reply.m, "b", &yes);
    if (r < 0) throw std::runtime_error(std::string("queryPort answer: ") + std::strerror(-r));
    return yes != 0;
  }
  void add_port(const std::string& port, const char* protocol) {
    ErrorGuard err;
    MessageGuard reply;
    // Timeout 0: until firewalld reloads or restarts (runtime only).
    int r = sd_bus_call_method(bus_, dest_.c_str(), kPath, kZoneInterface, "addPort", &err.e,
                               &reply.m, "sssi", "", port.c_str(), protocol, 0);
    if (r < 0) throw FirewalldError(err.e, r);
  }

 private:
  explicit FirewalldBus(sd_bus* bus) : bus_(bus) {}

  template <class... Args>
  std::string call_string(const char* method, const char* types, Args... args) {
    ErrorGuard err;
    MessageGuard reply;
    int r = sd_bus_call_method(bus_, dest_.c_str(), kPath, kZoneInterface, method, &err.e, &reply.m,
                               types, args...);
    if (r < 0) throw FirewalldError(err.e, r);
    return read_string(reply.m);
  }

  static std::string read_string(sd_bus_message* m) {
    const char* s = nullptr;
    int r = sd_bus_message_read(m, "s", &s);
    if (r < 0) throw std::runtime_error(std::string("unexpected answer: ") + std::strerror(-r));
    return s ? s : "";
  }

  sd_bus* bus_;
  // Calls go to firewalld's unique name (what owner() found), never to its well-known name:
  // a call to that could make the bus start ("activate") a firewalld that is not running.
  std::string dest_;
};

FirewalldZones::FirewalldZones(std::string log_tag) : log_tag_(std::move(log_tag)) {}
FirewalldZones::~FirewalldZones() = default;

bool FirewalldZones::ready_locked() {
  // A drift-repair pass asks once per device: one look at firewalld per second is enough.
  const auto now = std::chrono::steady_clock::now();
  if (checked_ && now - last_check_ < std::chrono::seconds(1)) return running_;
  checked_ = true;
  last_check_ = now;
  if (!bus_) bus_ = FirewalldBus::open();
  std::optional<std::string> owner;
  if (bus_) {
    try {
      owner = bus_->owner();
    } catch (const std::exception&) {
      bus_.reset();  // the bus went away (dbus restarted): connect again next time
    }
  }
  const bool was_running = running_;
  running_ = owner.has_value();
  if (!running_) {
    if (was_running) log::info(log_tag_, "firewalld stopped; nothing to keep in its zones");
    return false;
  }
  if (*owner != owner_) {
    // A new firewalld (or the first one we see) holds none of our runtime settings.
    owner_ = *owner;
    trusted_.clear();
    open_ports_.clear();
    log::info(log_tag_, announced_ ? "firewalld restarted: applying the overlay's zones again"
                                   : "firewalld is running: overlay interfaces go into its "
                                     "trusted zone (runtime only)");
    announced_ = true;
  }
  return true;
}

void FirewalldZones::trust(const std::string& interface) {
  std::lock_guard lock(mu_);
  if (!ready_locked() || trusted_.count(interface)) return;
  try {
    const std::string zone = bus_->zone_of_interface(interface);
    if (zone == kTrusted) {
      trusted_.insert(interface);
      return;
    }
    if (zone.empty())
      bus_->add_interface(kTrusted, interface);
    else
      bus_->change_zone_of_interface(kTrusted, interface);
    trusted_.insert(interface);
    log::info(log_tag_, "firewalld: " + interface + " in the trusted zone" +
                            (zone.empty() ? std::string() : " (was in " + zone + ")"));
  } catch (const std::exception& e) {
    log::warn(log_tag_,
              "firewalld: cannot put " + interface + " into the trusted zone: " + e.what());
  }
}

void FirewalldZones::forget(const std::string& interface) {
  std::lock_guard lock(mu_);
  trusted_.erase(interface);
  if (!ready_locked()) return;
  try {
    if (bus_->zone_of_interface(interface) != kTrusted) return;
    bus_->remove_interface(kTrusted, interface);
    log::info(log_tag_, "firewalld: " + interface + " out of the trusted zone (device gone)");
  } catch (const std::exception& e) {
    log::warn(log_tag_,
              "firewalld: cannot take " + interface + " out of the trusted zone: " + e.what());
  }
}

void FirewalldZones::open_udp_port(uint16_t port) {
  std::lock_guard lock(mu_);
  if (!ready_locked() || open_ports_.count(port)) return;
  const std::string text = std::to_string(port);
  try {
    if (!bus_->query_port(text, "udp")) {
      bus_->add_port(text, "udp");
      log::info(log_tag_, "firewalld: UDP port " + text + " open in the default zone (VXLAN)");
    }
    open_ports_.insert(port);
  } catch (const std::exception& e) {
    log::warn(log_tag_, "firewalld: cannot open UDP port " + text + ": " + e.what());
  }
}

bool FirewalldZones::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

std::optional<std::string> FirewalldZones::zone_of(const std::string& interface) {
  std::lock_guard lock(mu_);
  if (!ready_locked()) return std::nullopt;
  try {
    return bus_->zone_of_interface(interface);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace kohaku
