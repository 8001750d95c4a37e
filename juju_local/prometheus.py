"""A real Prometheus (Debian's), configured from what a charm publishes on `metrics-endpoint`.

`scrape_config` expands the published jobs as Prometheus's charm does: one job per job and
unit, named `juju_<model>_<uuid[:8]>_<app>_prometheus_scrape_<job>-<unit number>`, the `*`
target host replaced by the unit's address, and the Juju topology added as labels. The
published alert rules become a rule file.
"""

import json
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import IO, Any

from juju_local import processes

PORT = 9090
URL = f"http://127.0.0.1:{PORT}"
# Short intervals so tests see samples and alert states quickly; a job's own interval still
# wins, and the rules keep their production `for:` durations.
SCRAPE_INTERVAL = "1s"
EVALUATION_INTERVAL = "1s"
ALLOWED_JOB_KEYS = {
    "job_name",
    "metrics_path",
    "static_configs",
    "scrape_interval",
    "scrape_timeout",
    "relabel_configs",
    "metric_relabel_configs",
    "scheme",
    "params",
}


def scrape_config(app: str, databags: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The `scrape_configs` Prometheus builds from one relation's databags."""
    app_data = databags.get(app, {})
    metadata = json.loads(app_data.get("scrape_metadata", "{}"))
    jobs = json.loads(app_data.get("scrape_jobs", "[]"))
    units = {name: data for name, data in databags.items() if name.startswith(f"{app}/") and data}
    configs = []
    for job in jobs:
        for unit, data in sorted(units.items()):
            configs.append(_unit_job(job, metadata, unit, data))
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": EVALUATION_INTERVAL},
        "scrape_configs": configs,
    }


def _unit_job(job: dict, metadata: dict, unit: str, data: dict[str, str]) -> dict[str, Any]:
    prefix = "_".join(
        ["juju", metadata["model"], metadata["model_uuid"][:8], metadata["application"]]
    )
    expanded = {key: value for key, value in job.items() if key in ALLOWED_JOB_KEYS}
    expanded["job_name"] = (
        f"{prefix}_prometheus_scrape_{job.get('job_name', 'default')}-{unit.split('/')[1]}"
    )
    address = data.get("prometheus_scrape_unit_address", "")
    labels = {
        "juju_model": metadata["model"],
        "juju_model_uuid": metadata["model_uuid"],
        "juju_application": metadata["application"],
        "juju_charm": metadata.get("charm_name", ""),
        "juju_unit": data.get("prometheus_scrape_unit_name", unit),
    }
    static_configs = []
    for static in job.get("static_configs", []):
        targets = [target.replace("*", address, 1) for target in static.get("targets", [])]
        static_configs.append(
            {"targets": targets, "labels": {**static.get("labels", {}), **labels}}
        )
    expanded["static_configs"] = static_configs
    return expanded


class LocalPrometheus:
    """Prometheus on 127.0.0.1:9090 with its config and data under `state_dir`."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.pid_path = state_dir / "prometheus.pid"

    def start(self, app: str, databags: dict[str, dict[str, str]]) -> None:
        """(Re)start Prometheus with the jobs and rules the relation carries."""
        self.stop()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        import yaml  # here: `juju-local status` and `config` only look at pid_path

        config = scrape_config(app, databags)
        rules = json.loads(databags.get(app, {}).get("alert_rules", '{"groups": []}'))
        rules_path = self.state_dir / "rules.yaml"
        rules_path.write_text(yaml.safe_dump(rules))
        config["rule_files"] = [str(rules_path)]
        config_path = self.state_dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        argv = [
            "prometheus",
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.state_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{PORT}",
        ]
        with (self.state_dir / "prometheus.log").open("a") as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid_path.write_text(f"{process.pid}\n")
        self._wait_ready(process)

    def _wait_ready(self, process: subprocess.Popen, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with _get(f"{URL}/-/ready", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"Prometheus did not start; see {self.state_dir / 'prometheus.log'}")

    def query(self, expression: str) -> list[dict[str, Any]]:
        """Evaluate an instant PromQL query; raise with Prometheus's error if it fails."""
        url = f"{URL}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        with _get(url, timeout=10) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise ValueError(f"{expression}: {body.get('error')}")
        return body["data"]["result"]

    def alerts(self) -> list[dict[str, Any]]:
        """The active alerts (pending or firing), as `/api/v1/alerts` lists them."""
        with _get(f"{URL}/api/v1/alerts", timeout=10) as response:
            return json.load(response)["data"]["alerts"]

    def rule_health(self) -> dict[str, tuple[str, str]]:
        """Each loaded rule's health and last error, by name."""
        with _get(f"{URL}/api/v1/rules", timeout=10) as response:
            groups = json.load(response)["data"]["groups"]
        return {
            rule["name"]: (rule["health"], rule.get("lastError", ""))
            for group in groups
            for rule in group["rules"]
        }

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets and their health."""
        with _get(f"{URL}/api/v1/targets", timeout=10) as response:
            return json.load(response)["data"]["activeTargets"]

    def stop(self) -> None:
        """Stop Prometheus if it runs (SIGKILL if it ignores SIGTERM for 30 s)."""
        try:
            pid = int(self.pid_path.read_text())
        except (OSError, ValueError):
            return
        if processes.alive(pid):
            processes.terminate(pid, 30)
        self.pid_path.unlink(missing_ok=True)


def _get(url: str, timeout: float) -> IO[bytes]:
    """GET `url` (urllib imported on first use: most commands never query Prometheus)."""
    import urllib.request

    return urllib.request.urlopen(url, timeout=timeout)
