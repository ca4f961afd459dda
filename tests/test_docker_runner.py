"""The docker runner against the real Docker Engine, with a tiny image built here.

The image is python:3.11-slim with a fake ``wine-pipeline`` whose "steps" print lines,
fail, or wait for a file, and a non-root user like the real images.  These tests skip,
saying why, only when no engine answers; with WINE_REQUIRE_DOCKER=1 (set by .ci/run)
a missing engine fails them instead.
"""

from __future__ import annotations

import logging
import re
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import engine_or_skip
from pipeline.orchestration.runners import TAIL_LINES, StepFailed, make_runner

pytestmark = pytest.mark.docker

docker = pytest.importorskip("docker", reason="the docker SDK is not installed")

from pipeline.orchestration import docker_runner as dr  # noqa: E402
from pipeline.orchestration.docker_runner import DockerRunner, container_name  # noqa: E402

REPOSITORY = "wine-pipeline-test"
STEPS = ("ok", "fail", "wait")

FAKE_CLI = textwrap.dedent(
    '''\
    #!/usr/bin/env python3
    """Fake wine-pipeline: `wine-pipeline <step> <args>` as the runner starts it."""
    import os
    import sys
    import time
    from pathlib import Path

    step, args = sys.argv[1], sys.argv[2:]
    print(f"step {step} args {' '.join(args)}", flush=True)
    print(f"uid {os.getuid()} scheduler {os.environ.get('DASK_SCHEDULER_ADDRESS', '-')} "
          f"log level {os.environ.get('WINE_LOG_LEVEL', '-')}", flush=True)
    if step == "ok":          # ok N OUT: N lines, then write OUT
        for i in range(int(args[0])):
            print(f"line {i}", flush=True)
        Path(args[1]).write_text("done")
    elif step == "fail":      # 50 lines on stdout and stderr, exit 3
        for i in range(50):
            print(f"fail line {i}", file=sys.stderr if i % 2 else sys.stdout, flush=True)
        sys.exit(3)
    elif step == "wait":      # wait until FLAG exists
        print("waiting", flush=True)
        while not Path(args[0]).exists():
            time.sleep(0.1)
        print("released", flush=True)
    else:
        sys.exit(f"unknown step {step}")
    '''
)

DOCKERFILE = textwrap.dedent(
    """\
    FROM python:3.11-slim
    RUN useradd --uid 1000 --create-home wine
    COPY wine-pipeline /usr/local/bin/wine-pipeline
    RUN chmod 0755 /usr/local/bin/wine-pipeline
    LABEL wine-pipeline.project=wine-pipeline-test
    USER wine
    """
)


@pytest.fixture(scope="module")
def client():
    client = engine_or_skip(timeout=30)
    yield client
    client.close()


@pytest.fixture(scope="module")
def tag(client, tmp_path_factory):
    """Build the fake step image once and tag it as every fake step; untag at the end."""
    context = tmp_path_factory.mktemp("image")
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "wine-pipeline").write_text(FAKE_CLI)
    tag = f"t{uuid.uuid4().hex[:10]}"
    image, _ = client.images.build(path=str(context), tag=f"{REPOSITORY}/ok:{tag}", rm=True)
    for step in STEPS[1:]:
        image.tag(f"{REPOSITORY}/{step}", tag)
    yield tag
    for step in STEPS:
        try:
            client.images.remove(f"{REPOSITORY}/{step}:{tag}", noprune=False)
        except docker.errors.APIError:
            pass


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data_root"
    root.mkdir()
    root.chmod(0o777)  # the image's user (uid 1000) writes here whoever runs the tests
    return root


@pytest.fixture
def task_id():
    return f"FakeStep__test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def cleanup(client):
    """Remove, after the test, every container of the task ids it registers."""
    task_ids: list[str] = []
    yield task_ids
    for tid in task_ids:
        for c in client.containers.list(all=True, filters={"label": f"{dr.LABEL_TASK}={tid}"}):
            c.remove(force=True)


def make(client, tag, data_root, **kw) -> DockerRunner:
    return DockerRunner(tag=tag, repository=REPOSITORY, host_data_root=str(data_root),
                        client=client, status_interval=0.0, **kw)


def containers_of(client, task_id):
    return client.containers.list(all=True, filters={"label": f"{dr.LABEL_TASK}={task_id}"})


def creations(client, task_id, since):
    events = client.events(since=since, until=time.time() + 1, decode=True,
                           filters={"type": "container", "event": "create",
                                    "label": f"{dr.LABEL_TASK}={task_id}"})
    return [e["id"] for e in events]


# ------------------------------------------------------------------ no engine needed
def test_container_name_is_valid_deterministic_and_distinct():
    tid = "Train__usr_share_data_3f2a9c41d2"
    assert container_name(tid) == container_name(tid)
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", container_name(tid))
    assert container_name(tid).startswith("wine-Train__usr_share_data")
    weird = "Évaluer(source=http://x/y z.csv)" + "x" * 300
    name = container_name(weird)
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name) and len(name) < 100
    # Two ids that sanitise alike still get two names.
    assert container_name("a/b") != container_name("a:b")


def test_from_env_reads_the_compose_settings():
    env = {
        "WINE_IMAGE_TAG": "1.2", "WINE_DOCKER_NETWORK": "net", "WINE_HOST_DATA_ROOT": "/srv/d",
        "WINE_DATA_MOUNT": "/data", "WINE_KEEP_CONTAINERS": "1", "WINE_STEP_USER": "1001:1001",
        "DASK_SCHEDULER_ADDRESS": "tcp://s:8786", "WINE_PASS_ENV": "EXTRA", "EXTRA": "x",
        "WINE_LOG_LEVEL": "WARNING", "OTHER": "not passed",
    }
    r = DockerRunner.from_env(env, env={"MORE": "y"})
    assert (r.tag, r.network, r.host_data_root, r.data_mount) == ("1.2", "net", "/srv/d", "/data")
    assert r.keep_containers and r.user == "1001:1001"
    assert r.env == {"DASK_SCHEDULER_ADDRESS": "tcp://s:8786", "EXTRA": "x", "MORE": "y",
                     "WINE_LOG_LEVEL": "WARNING"}
    # The level a task passes (the run's --log-level) wins over the orchestrator's own.
    r = DockerRunner.from_env(env, env={"WINE_LOG_LEVEL": "DEBUG"})
    assert r.env["WINE_LOG_LEVEL"] == "DEBUG"
    assert r.image_for("train") == "wine-pipeline/train:1.2"
    defaults = DockerRunner.from_env({})
    assert (defaults.tag, defaults.network, defaults.keep_containers) == ("0.1", None, False)


def test_make_runner_docker_branch(monkeypatch):
    monkeypatch.setenv("WINE_IMAGE_TAG", "9.9")
    monkeypatch.setenv("WINE_LOG_LEVEL", "INFO")
    runner = make_runner("docker", env={"WINE_LOG_LEVEL": "DEBUG"})
    assert isinstance(runner, DockerRunner) and runner.tag == "9.9"
    assert runner.env["WINE_LOG_LEVEL"] == "DEBUG"


S3_SETTINGS = {"AWS_ENDPOINT_URL": "http://object-store:8333", "AWS_ACCESS_KEY_ID": "key",
               "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_SESSION_TOKEN": "token"}
TLS_SETTINGS = {"DASK_DISTRIBUTED__COMM__TLS__CA_FILE": "/etc/wine-pipeline/tls/ca.pem",
                "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": "/etc/wine-pipeline/tls/tls.pem",
                "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": "/etc/wine-pipeline/tls/tls.key",
                "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True"}


def test_a_url_data_root_mounts_nothing_and_hands_on_the_s3_settings():
    env = {"WINE_DATA_ROOT_URL": "s3://wine/pipeline", "WINE_DOCKER_NETWORK": "net",
           "DASK_SCHEDULER_ADDRESS": "tcp://scheduler:8786", **S3_SETTINGS,
           "AWS_PROFILE": "not passed", "WINE_HOST_DATA_ROOT": "", **TLS_SETTINGS}
    r = DockerRunner.from_env(env)
    assert r.data_root_url == "s3://wine/pipeline" and r.host_data_root is None
    assert r.env == {"DASK_SCHEDULER_ADDRESS": "tcp://scheduler:8786", **S3_SETTINGS}
    # No host folder is looked for (this would raise without WINE_HOST_DATA_ROOT).
    assert r._mounts() == []
    with pytest.raises(ValueError, match="not an object-store URL"):
        DockerRunner(data_root_url="/usr/share/data")


def test_with_a_folder_data_root_the_s3_and_tls_settings_stay_home():
    env = {"WINE_HOST_DATA_ROOT": "/srv/data", "WINE_DOCKER_NETWORK": "net", **S3_SETTINGS,
           **TLS_SETTINGS, "WINE_TLS": "0"}
    r = DockerRunner.from_env(env)
    assert r.env == {} and not r.tls and r.data_root_url is None
    (mount,) = r._mounts()
    assert (mount["Target"], mount["Source"], mount["Type"]) == (
        "/usr/share/data", "/srv/data", "bind")
    assert not mount.get("ReadOnly")


def test_tls_mounts_the_certificates_read_only_and_hands_on_dasks_settings():
    env = {"WINE_TLS": "1", "WINE_HOST_TLS_DIR": "/srv/certs", "WINE_DOCKER_NETWORK": "net",
           "WINE_DATA_ROOT_URL": "s3://wine/p", "DASK_SCHEDULER_ADDRESS": "tls://scheduler:8786",
           **TLS_SETTINGS}
    r = DockerRunner.from_env(env)
    assert r.tls and r.tls_mount == "/etc/wine-pipeline/tls"
    assert r.env == {"DASK_SCHEDULER_ADDRESS": "tls://scheduler:8786", **TLS_SETTINGS}
    (mount,) = r._mounts()
    assert (mount["Target"], mount["Source"], mount["Type"], mount["ReadOnly"]) == (
        "/etc/wine-pipeline/tls", "/srv/certs", "bind", True)
    # Beside a folder data root, both are mounted.
    r = DockerRunner.from_env({**env, "WINE_DATA_ROOT_URL": "", "WINE_HOST_DATA_ROOT": "/d"})
    assert [m["Target"] for m in r._mounts()] == ["/usr/share/data", "/etc/wine-pipeline/tls"]


def test_tls_without_a_certificates_folder_says_what_to_set():
    r = DockerRunner(tls=True, data_root_url="s3://wine/p", network="net")
    with pytest.raises(RuntimeError, match="WINE_HOST_TLS_DIR"):
        r._mounts()


# ------------------------------------------------------------------ real engine
def test_success_streams_the_log_and_removes_the_container(
        client, tag, data_root, task_id, cleanup, caplog):
    cleanup.append(task_id)
    caplog.set_level(logging.INFO, logger=dr.__name__)
    statuses: list[str] = []
    runner = make(client, tag, data_root, env={"DASK_SCHEDULER_ADDRESS": "tcp://sched:8786",
                                               "WINE_LOG_LEVEL": "DEBUG"})

    runner.run("ok", ["7", "/usr/share/data/out.txt"], task_id, statuses.append)

    logged = [r.getMessage() for r in caplog.records]
    for i in range(7):
        assert f"[ok] line {i}" in logged
    assert "[ok] step ok args 7 /usr/share/data/out.txt" in logged
    uid_line = next(m for m in logged if m.startswith("[ok] uid "))
    assert "uid 0 " not in uid_line, "steps must not run as root"
    assert "scheduler tcp://sched:8786 log level DEBUG" in uid_line
    assert statuses and statuses[-1] == "line 6"
    assert (data_root / "out.txt").read_text() == "done"
    assert containers_of(client, task_id) == []


def test_failure_raises_step_failed_with_the_last_lines(
        client, tag, data_root, task_id, cleanup):
    cleanup.append(task_id)
    runner = make(client, tag, data_root)
    with pytest.raises(StepFailed) as err:
        runner.run("fail", [], task_id)
    message = str(err.value)
    assert "exited with 3" in message and task_id in message
    # Only the tail: stdout and stderr are separate pipes, so the engine may not
    # interleave them line by line (a whole stream can come first, and with it the two
    # header lines can fall in the tail), but the last line of either is always kept.
    assert "fail line 49" in message or "fail line 48" in message
    tail = message.split("last lines:\n", 1)[1].splitlines()
    assert len(tail) == TAIL_LINES < 52
    assert all(line.startswith(("fail line ", "step fail", "uid ")) for line in tail)
    assert containers_of(client, task_id) == []


def test_labels_name_network_user_and_keep_option(client, tag, data_root, task_id, cleanup):
    cleanup.append(task_id)
    network = client.networks.create(f"wine-test-{uuid.uuid4().hex[:8]}")
    try:
        runner = make(client, tag, data_root, keep_containers=True, network=network.name,
                      user="4321:4321")
        runner.run("ok", ["1", "/usr/share/data/a.txt"], task_id)
        (kept,) = containers_of(client, task_id)
        assert kept.name == container_name(task_id, scope=network.name)
        assert kept.name != container_name(task_id)
        assert kept.status == "exited"
        labels = kept.labels
        assert labels[dr.LABEL_PROJECT] == "wine-pipeline"
        assert labels[dr.LABEL_TASK] == task_id
        assert labels[dr.LABEL_STEP] == "ok"
        assert (labels[dr.LABEL_ATTEMPT], labels[dr.LABEL_RETRY]) == ("1", "0")
        assert labels[dr.LABEL_TAG] == tag
        assert labels[dr.LABEL_NETWORK] == network.name
        assert network.name in kept.attrs["NetworkSettings"]["Networks"]
        assert kept.attrs["Config"]["User"] == "4321:4321"
        assert b"uid 4321" in kept.logs()

        # The next attempt of the same task replaces the kept container.
        runner.run("ok", ["1", "/usr/share/data/b.txt"], task_id)
        (again,) = containers_of(client, task_id)
        assert again.id != kept.id
        assert (again.labels[dr.LABEL_ATTEMPT], again.labels[dr.LABEL_RETRY]) == ("2", "1")
    finally:
        for c in containers_of(client, task_id):
            c.remove(force=True)
        network.remove()


def test_reattaches_to_a_running_container_of_the_same_task(
        client, tag, data_root, task_id, cleanup, caplog):
    cleanup.append(task_id)
    caplog.set_level(logging.INFO, logger=dr.__name__)
    since = time.time() - 1
    flag = data_root / "release"

    # An orchestrator started the step, then died: its container runs on.
    first, reattached = make(client, tag, data_root).start("wait", ["/usr/share/data/release"],
                                                           task_id)
    assert not reattached
    deadline = time.time() + 30
    while b"waiting" not in first.logs() and time.time() < deadline:
        time.sleep(0.1)

    # The restarted orchestrator runs the same task with a fresh runner.
    errors: list[BaseException] = []

    def again():
        try:
            make(client, tag, data_root).run("wait", ["/usr/share/data/release"], task_id)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    thread = threading.Thread(target=again)
    thread.start()
    deadline = time.time() + 30
    while not any("reattaching" in r.getMessage() for r in caplog.records):
        assert time.time() < deadline, "the runner did not reattach"
        time.sleep(0.1)
    assert [c.id for c in containers_of(client, task_id)] == [first.id]
    flag.write_text("go")
    thread.join(60)
    assert not thread.is_alive() and not errors, errors

    assert creations(client, task_id, since) == [first.id], "a second container was started"
    logged = [r.getMessage() for r in caplog.records]
    assert "[wait] waiting" in logged  # printed before the reattach, still relayed
    assert "[wait] released" in logged
    assert containers_of(client, task_id) == []


def test_an_exited_container_of_a_previous_attempt_is_replaced(
        client, tag, data_root, task_id, cleanup):
    cleanup.append(task_id)
    since = time.time() - 1
    old, _ = make(client, tag, data_root).start("ok", ["1", "/usr/share/data/x"], task_id)
    assert old.wait(timeout=60)["StatusCode"] == 0

    runner = make(client, tag, data_root, keep_containers=True)
    runner.run("ok", ["2", "/usr/share/data/y"], task_id)

    (new,) = containers_of(client, task_id)
    assert new.id != old.id
    assert int(new.labels[dr.LABEL_ATTEMPT]) == int(old.labels[dr.LABEL_ATTEMPT]) + 1
    assert creations(client, task_id, since) == [old.id, new.id]
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(old.id)


def test_a_missing_image_fails_with_how_to_build_it(client, data_root, task_id, cleanup):
    cleanup.append(task_id)
    runner = make(client, "no-such-tag", data_root)
    with pytest.raises(StepFailed, match="build-task-images.sh no-such-tag"):
        runner.run("ok", ["1", "/usr/share/data/x"], task_id)


def test_debug_container_sleeps_for_a_shell(client, tag, data_root):
    name = f"wine-test-debug-{uuid.uuid4().hex[:8]}"
    runner = make(client, tag, data_root)
    container = runner.start_debug("ok", seconds=120, name=name)
    try:
        assert container.status == "running"
        assert container.labels[dr.LABEL_DEBUG] == "1"
        assert runner.start_debug("ok", seconds=120, name=name).id == container.id  # reused
        code, out = container.exec_run(["sh", "-c", "id -u; ls -d /usr/share/data"])
        assert code == 0
        uid, mount = out.decode().split()
        assert uid != "0" and mount == "/usr/share/data"
    finally:
        container.remove(force=True)


def test_debug_task_starts_the_sleeping_container(client, tag, data_root, monkeypatch):
    luigi = pytest.importorskip("luigi")
    from pipeline.orchestration.debug import Debug

    task = Debug(step="ok", tag=tag, repository=REPOSITORY, seconds=120,
                 data_root=str(data_root))
    monkeypatch.setattr(Debug, "container_name", f"wine-test-debugtask-{uuid.uuid4().hex[:8]}")
    try:
        assert not task.complete()
        assert luigi.build([task], local_scheduler=True, log_level="WARNING")
        assert task.complete()
        container = client.containers.get(task.container_name)
        mount = next(m for m in container.attrs["Mounts"]
                     if m["Destination"] == "/usr/share/data")
        assert Path(mount["Source"]) == Path(data_root)
    finally:
        try:
            client.containers.get(task.container_name).remove(force=True)
        except docker.errors.NotFound:
            pass


def test_an_object_store_step_gets_no_data_mount_but_the_certificates(
        client, tag, tmp_path, task_id, cleanup):
    cleanup.append(task_id)
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.pem").write_text("not a real CA")
    certs.chmod(0o755)
    runner = DockerRunner(tag=tag, repository=REPOSITORY, client=client, status_interval=0.0,
                          data_root_url="s3://wine/pipeline", tls=True,
                          host_tls_dir=str(certs), keep_containers=True,
                          env={**S3_SETTINGS, **TLS_SETTINGS})
    runner.run("ok", ["1", "/tmp/out.txt"], task_id)
    (kept,) = containers_of(client, task_id)
    mounts = [(m["Type"], m["Source"], m["Destination"], m["RW"]) for m in kept.attrs["Mounts"]]
    assert mounts == [("bind", str(certs), "/etc/wine-pipeline/tls", False)]
    environment = dict(line.split("=", 1) for line in kept.attrs["Config"]["Env"])
    assert {**S3_SETTINGS, **TLS_SETTINGS}.items() <= environment.items()
    assert b"step ok args 1 /tmp/out.txt" in kept.logs()
