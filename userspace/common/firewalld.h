#pragma once
// firewalld, when it runs, must let the overlay through: KohakuRiver puts its overlay interfaces
// into the `trusted` zone (its docs: "firewalld is configured automatically"). Both daemons use
// this one class: the host for every vxkr<id> device, the runner for kohaku-overlay, vxlan0,
// every kbr-<name> and vxlan<VNI>; and it opens the VXLAN UDP port in the default zone.
//
// Everything is runtime configuration only (nothing is written to /etc/firewalld): a daemon
// re-applies it at every start and whenever firewalld itself restarted (its bus name changed
// owner), and takes an interface out of the zone when its device goes away.
//
// It talks to firewalld's D-Bus API (org.fedoraproject.FirewallD1) through sd-bus (libsystemd),
// on the system bus: $DBUS_SYSTEM_BUS_ADDRESS when set, else the standard socket. Spawning
// firewall-cmd would cost a Python start-up (~0.3 s) per interface and say less on failure.
// When there is no system bus or firewalld does not own its name, nothing is attempted and
// nothing is logged as an error: most machines run no firewalld.
//
// Never throws: a call firewalld refuses is logged as a warning naming the interface and
// firewalld's message, and retried the next time the caller asks (the daemons ask again on
// every drift-repair pass; answers are cached, so a pass costs one D-Bus call). Thread-safe.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace kohaku {

class FirewalldBus;  // firewalld.cpp: the sd-bus connection and firewalld's methods

class FirewalldZones {
 public:
  // `log_tag` names the daemon part in log lines.
  explicit FirewalldZones(std::string log_tag);
  ~FirewalldZones();
  FirewalldZones(const FirewalldZones&) = delete;
  FirewalldZones& operator=(const FirewalldZones&) = delete;

  // Puts `interface` into the trusted zone (moving it from another zone) unless it is there.
  void trust(const std::string& interface);
  // Takes `interface` out of the trusted zone when it is there (its device went away).
  void forget(const std::string& interface);
  // Opens UDP `port` in firewalld's default zone unless it is open.
  void open_udp_port(uint16_t port);

  // Whether firewalld was running at the last call (for status output and tests).
  bool running() const;

  // What firewalld says (for tests and diagnostics); nullopt when it does not run.
  std::optional<std::string> zone_of(const std::string& interface);

 private:
  // Connects when needed and checks firewalld's owner; on a new owner (firewalld restarted)
  // forgets the cache so everything is applied again. False when firewalld does not run.
  bool ready_locked();

  const std::string log_tag_;
  mutable std::mutex mu_;
  std::unique_ptr<FirewalldBus> bus_;
  std::string owner_;  // firewalld's unique bus name when last seen
  bool running_ = false;
  bool announced_ = false;
  bool checked_ = false;
  std::chrono::steady_clock::time_point last_check_;
  std::set<std::string> trusted_;  // put (or found) in the trusted zone under owner_
  std::set<uint16_t> open_ports_;
};

}  // namespace kohaku
