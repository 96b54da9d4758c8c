"""The doctor's checks on files shaped like /etc/subuid, /proc/sys and device modes; and tool output tails."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from pipeline import tooloutput
from pipeline.errors import UsageError
from pipeline.services import doctor, subids, toolchecks


def _user(name: str = "dev", uid: int = 1500) -> pwd.struct_passwd:
    return pwd.struct_passwd((name, "x", uid, uid, "", f"/home/{name}", "/bin/bash"))


def test_subid_ranges_by_name_or_uid_and_the_next_free_range(tmp_path: Path) -> None:
    path = tmp_path / "subuid"
    path.write_text("alice:100000:65536\n1500:165536:1000\n# comment\nbroken line\ndev:300000:65536\n")
    assert subids.subid_ranges(path, _user()) == [(165536, 1000), (300000, 65536)]
    assert subids.subid_ranges(path, _user("bob", 1600)) == []
    defaults = tmp_path / "login.defs"  # none set: shadow's defaults
    assert subids.free_range(path, "uid", login_defs=defaults, in_use=set()) == (166536, 232071)  # a gap
    assert subids.free_range(tmp_path / "absent", "uid", login_defs=defaults, in_use=set()) == (
        100000,
        165535,
    )


def test_a_missing_or_short_range_fails_with_the_usermod_that_fixes_it(tmp_path: Path) -> None:
    path = tmp_path / "subgid"
    path.write_text("alice:100000:65536\ndev:165536:1000\n")
    check = doctor._subid_check("gid", path, _user())
    assert not check.ok
    assert check.detail == f"only 1000 ids for dev in {path} (rootless podman and mmdebstrap need 65536)"
    assert check.fix == "usermod --add-subgids 166536-232071 dev  (as root)"
    assert "FAIL subgid" in check.line() and "fix: usermod" in check.line()
    path.write_text("dev:100000:65536\n")
    ok = doctor._subid_check("gid", path, _user())
    assert ok.ok and ok.fix == "" and "100000-165535" in ok.detail


def test_device_access_follows_owner_group_and_other_bits(tmp_path: Path) -> None:
    me = pwd.getpwuid(os.getuid())
    other = _user("nobody-here", 54321)
    device = tmp_path / "tun"
    device.write_text("")
    os.chmod(device, 0o600)
    assert doctor.can_read_write(device, me) == (me.pw_uid == os.stat(device).st_uid or me.pw_uid == 0)
    assert not doctor.can_read_write(device, other)
    os.chmod(device, 0o666)
    assert doctor.can_read_write(device, other)
    os.chmod(device, 0o644)
    assert not doctor.can_read_write(device, other)


def test_user_namespaces_disabled_by_any_switch_say_which_and_how(tmp_path: Path) -> None:
    (tmp_path / "user").mkdir()
    (tmp_path / "kernel").mkdir()
    (tmp_path / "user" / "max_user_namespaces").write_text("0\n")
    (tmp_path / "kernel" / "apparmor_restrict_unprivileged_userns").write_text("1\n")
    check = doctor._userns_check(tmp_path)
    assert not check.ok
    assert check.detail == (
        "disabled: user.max_user_namespaces = 0, kernel.apparmor_restrict_unprivileged_userns = 1"
    )
    assert check.fix.startswith("sysctl -w user.max_user_namespaces=28633 && sysctl -w ")
    (tmp_path / "user" / "max_user_namespaces").write_text("15000\n")
    (tmp_path / "kernel" / "apparmor_restrict_unprivileged_userns").write_text("0\n")
    assert doctor._userns_check(tmp_path).ok  # a kernel without unprivileged_userns_clone is fine


def test_an_unknown_user_is_bad_input_with_what_to_do() -> None:
    with pytest.raises(UsageError, match="there is no user 'no-such-user-kp' on this machine") as info:
        doctor.target_user("no-such-user-kp")
    assert info.value.exit_code == 2 and "useradd" in str(info.value.hint)


def test_sudo_user_is_the_default_target_for_root(monkeypatch: pytest.MonkeyPatch) -> None:
    me = pwd.getpwuid(os.getuid())
    assert doctor.target_user(None, {}).pw_uid == os.geteuid()
    if os.geteuid() == 0:
        assert doctor.target_user(None, {"SUDO_USER": "nobody"}).pw_name == "nobody"
    else:
        assert doctor.target_user(None, {"SUDO_USER": "nobody"}).pw_name == me.pw_name


def test_tool_output_tail_keeps_the_tools_last_words() -> None:
    said = "stderr: 'Cloning into x...\n\nfatal: could not read\nerror: Permission denied\n'"
    assert tooloutput.tail(said, 2) == "fatal: could not read\nerror: Permission denied"
    assert (
        tooloutput.failure("cloning", "git", 128, b"a\nb\n") == "cloning failed (git exit status 128):\na\nb"
    )
    assert (
        tooloutput.failure("pulling", "podman", 125, "")
        == "pulling failed (podman exit status 125; podman printed nothing)"
    )


def test_buildah_missing_fails_with_the_package_that_installs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither buildah nor busybox: /usr/bin is not searched
    check = toolchecks.buildah_check(pwd.getpwuid(os.geteuid()))
    assert not check.ok
    assert check.detail == "buildah is not installed"
    assert check.fix == "apt-get install buildah  (as root)"


def test_a_failed_buildah_run_step_says_what_fixes_it() -> None:
    crun = "Error: OCI runtime error: crun: cgroups in hybrid mode not supported"
    assert toolchecks.buildah_fix(crun).startswith("apt-get install runc  (as root")
    assert "subuid, subgid, newuidmap, user namespaces" in toolchecks.buildah_fix(
        "newuidmap: write to uid_map"
    )
