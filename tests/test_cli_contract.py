"""Issue 13's exit-code and one-line-error contract (defects 19, 20 and the error messages of 30): usage errors
exit 2 with click's message, run-time failures exit 1 with one line. Each case failed before its fix."""

import os
import signal
import socket
import subprocess
import sys
import time


def test_19_usage_errors_exit_2_with_clicks_own_message(cli):
    cases = [("add",), ("list", "--year", "abc"), ("bogus",), ("list", "--bogus"), ("sweep", "kd-hinton", "--seeds", "0"),
             ("ui", "--port", "abc")]
    for args in cases:
        r = cli(*args)
        assert r.code == 2, (args, r.code, r.err)
        assert "Error: " in r.err and "MissingParameter" not in r.err and "Traceback" not in r.err, r.err


def test_19_rm_without_a_terminal_says_how_to_confirm(sh, cli, arxiv):
    assert cli("add", "1503.02531").code == 0
    r = sh("rm", "1503.02531", stdin=subprocess.DEVNULL)
    assert r.code == 2 and "add --yes" in r.err and len(r.err.strip().splitlines()) == 1
    assert cli("show", "1503.02531").code == 0  # still there


def test_19_ctrl_c_during_run_prints_the_resume_hint(home):
    args = ["run", "kd-hinton", "--profile", "smoke", "--device", "cpu", "--set", "train.epochs=60"]
    # Ctrl-C's default action, even where the tests run as a background job (which ignores SIGINT, and
    # Python then installs no KeyboardInterrupt handler)
    proc = subprocess.Popen([sys.executable, "-m", "paperlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not list(home.glob("runs/*/*.ckpt")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err.strip().splitlines()[-1] and "Traceback" not in err
    assert "INFO" not in err and "Creating initial MLflow database tables" not in err  # MLflow's own log lines


def test_20_ui_refuses_bad_and_busy_ports_in_one_line(cli):
    for port in ("99999", "-1", "0"):
        r = cli("ui", "--port", port)
        assert r.code == 2 and "Invalid value for '--port'" in r.err, r.err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = cli("ui", "--port", str(busy.getsockname()[1]))
    assert r.code == 1 and "choose another --port" in r.err and len(r.err.strip().splitlines()) == 1, r.err
