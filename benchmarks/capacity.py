"""Cameras per box: N cameras of 1080p H.264 at 10 fps through the real agent with the shipped models.

    python benchmarks/capacity.py [--cameras 1,4,8,16] [--seconds 60] [--fps 10] [--duty 0.1]
        [--kbps 4096] [--phase spread|together|both] [--warmup 15] [--out benchmarks/reports/capacity.md]

One night scene is rendered once by edge_agent.sim.night_clip (a real photo scene, a person walking
through for `duty` of the loop, so the motion gate fires that share of the time) and encoded into
work_cache/capacity/ as IP cameras encode: H.264 at a capped bit rate (--kbps), no B-frames, a key
frame every 2 s. Motion phases: spread (default), each camera gets the loop shifted by k/N, so the
cameras see people at different times as independent cameras do; together, every camera sees the
person at the same moment (the worst case for the shared worker). Each camera loops its stream,
paced at --fps like a live camera (source.fps_limit). `edge-agent run` runs as its own process with
the local sink; this script samples it from /proc every 0.5 s and reads what the agent writes:
- CPU cores used: the agent's user + system CPU time over the measured window / its length;
- fps per camera: frames counted by the agent (stats.jsonl, every 5 s) over the window;
- frames dropped by the gate (frames overwritten before the motion gate saw them) and jobs dropped
  (motion frames the worker could not take);
- event latency: when the event's JSON appeared in the sink minus the time its frame was read
  (the event's ts), p50 / p95 over every message of the window;
- peak RSS of the agent process: VmHWM, the kernel's high-water mark of its resident memory over
  the whole run (start-up included), which is what a memory limit meets; beside it the largest
  VmRSS of the 0.5 s samples after the warm-up (a run's short peaks, such as a runtime's buffers
  for one 720p inference, fall between samples).
Targets (the hardening issue): 8 cameras on 2 cores, 10 % motion: >= 9.5 fps per camera, 0 frames
dropped by the gate, latency p95 <= 1 s, peak RSS <= 500 MB. The report states the largest N that
meets them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import cpu_name, models_line  # noqa: E402  (benchmarks/machine.py)

CLIP_SECONDS = 20.0
TICKS = os.sysconf("SC_CLK_TCK")
TARGETS = {"fps": 9.5, "frames_dropped": 0, "latency_p95_s": 1.0, "rss_mb": 500.0}


def make_master(cache: Path, fps: float, duty: float) -> Path:
    """The scene rendered once (cached) at high quality: 1920x1080, a person in view for duty * CLIP_SECONDS."""
    from edge_agent.demo import clip_spec
    from edge_agent.sim.night_clip import write_clip

    path = cache / f"capacity_master_1080p_{fps:g}fps_duty{duty:g}.mp4"
    if path.is_file():
        return path
    walk = duty * CLIP_SECONDS
    start = (CLIP_SECONDS - walk) / 2
    spec = replace(clip_spec(1920, 1080, fps, CLIP_SECONDS, person=(start, start + walk), seed=5), crf=14)
    print(f"rendering the 1080p scene once -> {path}", flush=True)
    write_clip(spec, path)
    return path


def make_clips(cache: Path, fps: float, duty: float, phases: int, kbps: int) -> list[Path]:
    """One camera stream per phase (cached): the master shifted in time by k / phases of the loop and
    encoded as an IP camera encodes (H.264 at a capped bit rate, no B-frames, a key frame every 2 s).
    Cameras on different phases see the person at different times, as independent cameras do."""
    from edge_agent.sim.night_clip import camera_rate

    master = make_master(cache, fps, duty)
    clips = []
    for k in range(phases):
        shift = CLIP_SECONDS * k / phases
        path = cache / f"capacity_1080p_{fps:g}fps_duty{duty:g}_{kbps}k_shift{shift:.2f}.mp4"
        clips.append(path)
        if path.is_file():
            continue
        rotate = (f"[0:v]trim=start={shift:.3f},setpts=PTS-STARTPTS[a];"
                  f"[1:v]trim=end={shift:.3f},setpts=PTS-STARTPTS[b];[a][b]concat=n=2:v=1[v]") if shift else "[0:v]null[v]"
        tmp = path.with_suffix(".part.mp4")
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(master), "-i", str(master),
                        "-filter_complex", rotate, "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast",
                        "-profile:v", "high", *camera_rate(23, kbps), "-g", str(int(fps * 2)),
                        "-pix_fmt", "yuv420p", str(tmp)], check=True)
        tmp.replace(path)
    return clips


def agent_config(n: int, clips: list[Path], fps: float, out: Path, backend: str = "auto",
                 models: Path = ROOT / "models", fuse_frames: int | None = None) -> dict:
    cams = [{"name": f"cam{i + 1:02d}", "source": {"file": str(clips[i % len(clips)]), "loop": True, "fps_limit": fps},
             **({"faces": {"fuse_frames": fuse_frames}} if fuse_frames else {})}
            for i in range(n)]
    return {"site": "capacity", "cameras": cams, "models": {"dir": str(models)}, "inference": {"backend": backend},
            "pipeline": {"stats_interval_s": 5.0}, "publish": {"sink": "local", "local": {"dir": str(out)}},
            "api": {"enabled": False}, "state_dir": str(out / ".state"), "logging": {"level": "WARNING"}}


def _proc(pid: int) -> tuple[float, float, float]:
    """(CPU seconds, RSS MB, peak RSS MB so far = VmHWM) of a process from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / TICKS  # utime, stime
    mem = {"VmRSS:": 0.0, "VmHWM:": 0.0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(maxsplit=1)[0] if line else ""
        if key in mem:
            mem[key] = int(line.split()[1]) / 1024.0
    return cpu, mem["VmRSS:"], mem["VmHWM:"]


@dataclass
class Run:
    cameras: int
    phase: str = "spread"
    backend: str = "auto"
    seconds: float = 0.0
    cores: float = 0.0
    fps: list[float] = field(default_factory=list)
    frames_dropped: int = 0
    jobs_dropped: int = 0
    latencies: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0  # VmHWM: the true peak, start-up included
    sampled_rss_mb: float = 0.0  # largest VmRSS sample after the warm-up
    events: int = 0
    error: str | None = None

    def p(self, q: float) -> float | None:
        if not self.latencies:
            return None
        return statistics.quantiles(self.latencies, n=100)[q - 1] if len(self.latencies) > 1 else self.latencies[0]

    def meets(self) -> bool:
        p95 = self.p(95)
        return (self.error is None and bool(self.fps) and min(self.fps) >= TARGETS["fps"]
                and self.frames_dropped <= TARGETS["frames_dropped"]
                and (p95 is None or p95 <= TARGETS["latency_p95_s"]) and self.peak_rss_mb <= TARGETS["rss_mb"])


def _stats_lines(path: Path, pos: int) -> tuple[list[dict], int]:
    if not path.is_file():
        return [], pos
    with open(path, encoding="utf-8") as f:
        f.seek(pos)
        text = f.read()
    lines, _, rest = text.rpartition("\n")
    return [json.loads(x) for x in lines.splitlines() if x.strip()], pos + len(text) - len(rest)


def run_one(n: int, clips: list[Path], fps: float, seconds: float, warmup: float, backend: str,
            models: Path = ROOT / "models", fuse_frames: int | None = None) -> Run:
    res = Run(cameras=n)
    with tempfile.TemporaryDirectory(prefix="nw-capacity-") as tmp:
        out = Path(tmp) / "events"
        cfg = Path(tmp) / "agent.yaml"
        cfg.write_text(yaml.safe_dump(agent_config(n, clips, fps, out, backend, models, fuse_frames)), encoding="utf-8")
        agent = ROOT / ".venv" / "bin" / "edge-agent"
        cmd = [str(agent) if agent.exists() else "edge-agent", "run", "--config", str(cfg)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stats_path, pos = out / "stats.jsonl", 0
        first: dict[str, tuple[float, int]] = {}
        last: dict[str, tuple[float, dict]] = {}
        t0 = time.monotonic()
        t_start = t_cpu0 = cpu0 = None
        try:
            while time.monotonic() - t0 < warmup + seconds:
                time.sleep(0.5)
                if proc.poll() is not None:
                    res.error = f"the agent exited with {proc.returncode}: {proc.stderr.read()[-500:]}"
                    return res
                cpu, rss, hwm = _proc(proc.pid)
                res.peak_rss_mb = max(res.peak_rss_mb, hwm)
                now = time.monotonic()
                if now - t0 >= warmup:
                    res.sampled_rss_mb = max(res.sampled_rss_mb, rss)
                    if t_start is None:
                        t_start, t_cpu0, cpu0 = time.time(), now, cpu
                lines, pos = _stats_lines(stats_path, pos)
                for rec in lines:
                    cam, st = rec["camera"], rec["stats"]
                    if t_start is not None and cam not in first:
                        first[cam] = (now, st["frames"], st.get("frames_dropped", 0), st.get("jobs_dropped", 0))
                    last[cam] = (now, st)
            cpu_end, _, hwm_end = _proc(proc.pid)
            res.peak_rss_mb = max(res.peak_rss_mb, hwm_end)
            res.cores = (cpu_end - cpu0) / max(time.monotonic() - t_cpu0, 1e-6)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        res.seconds = seconds
        for cam, (t1, st) in last.items():
            if cam in first and t1 > first[cam][0]:
                t_first, f0, fd0, jd0 = first[cam]
                res.fps.append((st["frames"] - f0) / (t1 - t_first))
                res.frames_dropped += st.get("frames_dropped", 0) - fd0
                res.jobs_dropped += st.get("jobs_dropped", 0) - jd0
        for p in out.rglob("event-*.json"):
            doc = json.loads(p.read_text(encoding="utf-8"))
            if t_start is not None and doc["ts"] >= t_start:
                res.latencies.append(p.stat().st_mtime - doc["ts"])
                res.events += doc["phase"] == "new"
    return res


def report(runs: list[Run], args) -> str:
    lines = [
        "# Cameras per box",
        "",
        f"Date: {time.strftime('%Y-%m-%dT%H:%M:%S')}  ",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs. Command: `python benchmarks/capacity.py "
        f"--cameras {args.cameras} --seconds {args.seconds:g} --fps {args.fps:g} --duty {args.duty:g} "
        f"--kbps {args.kbps} --phase {args.phase} --backends {args.backends}`.",
        "",
        f"Each camera: a 1920x1080 H.264 stream encoded as an IP camera encodes it ({args.kbps} kbit/s capped, "
        f"no B-frames, a key frame every 2 s) from one rendered night scene ({CLIP_SECONDS:g} s looped, a person "
        f"in view {100 * args.duty:.0f} % of the time), paced at {args.fps:g} fps. Motion phases: *spread*, each "
        "camera sees the person at its own time (the loop shifted by k/N), as independent cameras do; "
        "*together*, every camera sees the person at the same moment (the worst case for the shared "
        f"worker). The real agent (`edge-agent run`, local sink; models: {models_line(args.models)}); "
        f"{args.warmup:g} s warm-up, "
        f"then {args.seconds:g} s measured. Backend: the agent's inference.backend (auto: ONNX Runtime for "
        "every model, edge_agent/builders.py AUTO_BACKEND).",
        "",
        "| cameras | motion phases | backend | CPU cores used | fps per camera (min / mean) | frames dropped by the gate "
        "| jobs dropped | event latency p50 / p95 s | events | peak RSS MB (VmHWM) | largest RSS sample MB "
        "| meets the targets |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        if r.error:
            lines.append(f"| {r.cameras} | {r.phase} | {r.backend} | - | - | - | - | - | - | - | - | no: {r.error} |")
            continue
        p50, p95 = r.p(50), r.p(95)
        lat = "-" if p50 is None else f"{p50:.2f} / {p95:.2f}"
        fps = "-" if not r.fps else f"{min(r.fps):.2f} / {statistics.mean(r.fps):.2f}"
        lines.append(f"| {r.cameras} | {r.phase} | {r.backend} | {r.cores:.2f} | {fps} | {r.frames_dropped} | {r.jobs_dropped} | "
                     f"{lat} | {r.events} | {r.peak_rss_mb:.0f} | {r.sampled_rss_mb:.0f} | {'yes' if r.meets() else 'no'} |")
    ok = [r.cameras for r in runs if r.meets() and r.phase != "together" and r.backend == "auto"]
    lines += ["", f"Targets: >= {TARGETS['fps']} fps per camera, {TARGETS['frames_dropped']} frames dropped by the "
              f"gate, latency p95 <= {TARGETS['latency_p95_s']} s, peak RSS <= {TARGETS['rss_mb']:.0f} MB.",
              f"**Largest N measured that meets them (motion spread, default backend): {max(ok) if ok else 'none'}.**", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", default="1,4,8,16")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=15.0)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--duty", type=float, default=0.1)
    ap.add_argument("--kbps", type=int, default=4096, help="the cameras' bit rate (1080p cameras ship with 2-8 Mbit/s)")
    ap.add_argument("--phase", choices=["spread", "together", "both"], default="spread")
    ap.add_argument("--backends", default="auto", help="inference.backend values to measure, e.g. auto,openvino")
    ap.add_argument("--cache", type=Path, default=ROOT / "work_cache" / "capacity")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports" / "capacity.md")
    ap.add_argument("--models", type=Path, default=ROOT / "models",
                    help="models folder the agent loads (default: the shipped models/)")
    ap.add_argument("--fuse-frames", type=int, default=None,
                    help="faces.fuse_frames of every camera (default: the agent's default; 1: no face fusion)")
    args = ap.parse_args()
    if not 0.0 < args.duty < 1.0:
        ap.error("--duty must be between 0 and 1")
    counts = [int(x) for x in args.cameras.split(",")]
    phases = ["spread", "together"] if args.phase == "both" else [args.phase]
    runs = []
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"auto", "onnxruntime", "openvino"}:
        ap.error("--backends: a list of auto, onnxruntime, openvino")
    for n in counts:
        for phase in (phases if n > 1 else phases[:1]):
            clips = make_clips(args.cache, args.fps, args.duty, n if phase == "spread" else 1, args.kbps)
            for backend in backends:
                print(f"{n} camera(s), motion {phase}, {backend}: {args.warmup:g} s warm-up + {args.seconds:g} s ...",
                      flush=True)
                r = run_one(n, clips, args.fps, args.seconds, args.warmup, backend, args.models.resolve(),
                           args.fuse_frames)
                r.phase, r.backend = phase, backend
                runs.append(r)
                print(report([r], args).splitlines()[-4], flush=True)
    text = report(runs, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
