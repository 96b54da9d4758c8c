"""Issue 21 item 8: `invoke setup` as root trusts only what root controls.

System programs come from /usr/sbin:/usr/bin:/sbin:/bin, never from PATH; a program is made setuid
only when it and every directory above it are root's and no one else can write them; `runuser` gets a
minimal environment; a new subuid (subgid) range respects /etc/login.defs and the ids in use; and
/dev/net/tun is changed only when it is the character device 10,200.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from pathlib import Path

import pytest

from pipeline.errors import ToolError
from pipeline.services import doctor, subids, toolchecks

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="setup fixes only as root (.ci/run's root run)")
NOBODY = 65534  # Debian's nobody and nogroup: an id in use
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # the only place root takes system programs from


def _user(name: str = "kp-setup-target", uid: int = 1500) -> pwd.struct_passwd:
    return pwd.struct_passwd((name, "x", uid, uid, "", f"/home/{name}", "/bin/bash"))


def test_a_new_range_respects_login_defs_and_the_ids_in_use(tmp_path: Path) -> None:
    defs = tmp_path / "login.defs"
    defs.write_text(
        "# shadow\nSUB_UID_MIN\t200000\nSUB_UID_MAX 400000\nSUB_UID_COUNT 65536\nSUB_GID_MIN 300000\n"
    )
    subuid = tmp_path / "subuid"
    subuid.write_text("alice:200000:65536\n")
    assert subids.free_range(subuid, "uid", login_defs=defs, in_use={1000, 270000}) == (270001, 335536)
    assert subids.free_range(subuid, "gid", login_defs=defs, in_use=set()) == (300000, 365535)
    with pytest.raises(
        ToolError, match="no 65536 free subuids left between SUB_UID_MIN 200000 and SUB_UID_MAX 400000"
    ):
        subids.free_range(subuid, "uid", login_defs=defs, in_use={330000, 390000})


@needs_root
def test_setup_as_root_trusts_only_what_root_controls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A directory another user owns, first on PATH, with programs named like the system's.
    planted = tmp_path / "planted"
    planted.mkdir()
    for name in ("newuidmap", "newgidmap", "usermod", "sysctl", "runuser", "podman"):
        shutil.copy("/bin/true", planted / name)
    os.chown(planted, NOBODY, NOBODY)
    monkeypatch.setenv("PATH", f"{planted}:{os.environ['PATH']}")
    # What setup reads and changes, in files of this test's own.
    defs = tmp_path / "login.defs"
    defs.write_text(f"SUB_UID_MIN {NOBODY - 100}\nSUB_GID_MIN {NOBODY - 100}\n")
    monkeypatch.setattr(subids, "LOGIN_DEFS", defs)
    monkeypatch.setattr(doctor, "SUBUID", tmp_path / "subuid")
    monkeypatch.setattr(doctor, "SUBGID", tmp_path / "subgid")
    fake_tun = tmp_path / "tun"  # a plain file where the device should be
    fake_tun.write_text("")
    fake_tun.chmod(0o600)
    monkeypatch.setattr(doctor, "TUN", fake_tun)

    calls: list[list[str]] = []
    result = doctor.fix(_user(), runner=calls.append)

    assert [call[0] for call in calls] == ["/usr/sbin/usermod", "/usr/sbin/usermod"]  # never PATH's
    start, end = NOBODY + 1, NOBODY + 65536  # past the range's first ids: nobody (65534) is in use
    assert calls[0][1:] == ["--add-subuids", f"{start}-{end}", "kp-setup-target"]
    assert calls[1][1:] == ["--add-subgids", f"{start}-{end}", "kp-setup-target"]
    for name in ("newuidmap", "newgidmap"):
        assert not (planted / name).stat().st_mode & stat.S_ISUID, f"{name} on PATH was made setuid"
    assert stat.S_IMODE(fake_tun.stat().st_mode) == 0o600
    tun = next(check for check in result.checks if check.name == "/dev/net/tun")
    assert not tun.ok and "is not the tun character device (c 10 200)" in tun.detail
    assert not any("tun" in change or "setuid" in change for change in result.changed), result.changed


@needs_root
def test_only_a_root_owned_file_in_root_owned_directories_may_become_setuid(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    shutil.copy("/bin/true", theirs / "newuidmap")  # root's file, in a directory nobody owns
    os.chown(theirs, NOBODY, NOBODY)
    assert doctor.setuid_refusal(theirs / "newuidmap") == f"{theirs} belongs to uid {NOBODY}, not root"
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    shutil.copy("/bin/true", open_dir / "newgidmap")
    open_dir.chmod(0o777)
    assert doctor.setuid_refusal(open_dir / "newgidmap") == f"{open_dir} is writable by others (mode 0777)"
    link = tmp_path / "link"
    link.symlink_to(theirs / "newuidmap")  # the real file counts, not the link's directory
    assert doctor.setuid_refusal(link) == f"{theirs} belongs to uid {NOBODY}, not root"
    system = shutil.which("true", path=SYSTEM_PATH)
    assert system is not None and doctor.setuid_refusal(Path(system)) is None


def test_runuser_gets_a_minimal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HUB_KANIKO_PAT", "dckr_pat_planted")
    monkeypatch.setenv("PATH", f"/home/someone/bin:{os.environ['PATH']}")
    other = _user(uid=os.geteuid() + 4321)
    env = toolchecks.podman_info_env(other)
    assert env == {
        "HOME": other.pw_dir,
        "USER": other.pw_name,
        "LOGNAME": other.pw_name,
        "LC_ALL": "C",
        "PATH": SYSTEM_PATH,
        "SHELL": "/bin/bash",
    }
    argv = toolchecks.podman_info_argv(other)
    assert argv[0] in ("/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser", "/bin/runuser", "runuser")
