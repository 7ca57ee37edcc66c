"""Load-test `fashion serve` on loopback: latency under steady load, and what hostile requests
cost the service (memory, and how long `/health` takes meanwhile).

    PYTHONPATH=src python -m benchmarks.load_test                 # starts its own server
    PYTHONPATH=src python -m benchmarks.load_test --url http://127.0.0.1:8000 --seconds 10

Scenarios (each bounded in requests and time; loopback only):
  photo8  8 client processes posting a phone photo (--photo: a test fixture's) for --seconds
  photo32 32 client processes posting the phone photo for --seconds
  jpeg8   8 clients posting a 400x400 JPEG of a garment on a plain background for --seconds
  png8    8 clients posting a 28x28 PNG for --seconds
  jpeg32  32 clients posting the JPEG for --seconds
  storm   16 clients posting a 7000x7000 PNG (62 KB) once each, /health polled meanwhile
  json    2 clients posting a 1,000-image JSON batch (about 16 MB) 3 times each, /health polled
  chunked one upload with no Content-Length that would be 1 GB: seconds until the 413

The server's resident memory is sampled every 20 ms from /proc, and its CPU time read from there
per scenario (only for a server it started). The photo scenarios' clients are processes, so
their own Python work does not hold one GIL; the others' are threads of this process.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PHONE_PHOTOS = REPO / "tests" / "fixtures" / "photos"


def make_jpeg(side: int = 400) -> bytes:
    """A photo-like JPEG: a dark garment on a light, slightly noisy background."""
    rng = np.random.default_rng(0)
    pixels = 235 + rng.integers(-8, 8, (side, side, 3))
    pixels[side // 5:side - side // 8, side // 4:side - side // 4] = 40
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def make_png(side: int) -> bytes:
    image = Image.new("RGB", (side, side), "white")
    image.paste((30, 30, 30), (side // 4, side // 5, 3 * side // 4, 4 * side // 5))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def make_batch(n: int = 1000) -> bytes:
    images = np.random.default_rng(0).random((n, 28, 28))
    return json.dumps({"images": images.tolist()}).encode()


class MemorySampler(threading.Thread):
    """The peak resident memory of a process, sampled from /proc every 20 ms."""

    def __init__(self, pid: int | None):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True

    def rss(self) -> int:
        if self.pid is None:
            return 0
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)

    def cpu_seconds(self) -> float:
        if self.pid is None:
            return float("nan")
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def window(self):
        """Reset the peak; return a function giving the peak and the CPU seconds since."""
        self.peak, cpu = self.rss(), self.cpu_seconds()
        return lambda: (self.peak, self.cpu_seconds() - cpu)


def run_clients(url: str, files, clients: int, seconds: float | None = None,
                repeats: int | None = None, content_type: str | None = None) -> dict:
    """Each client posts until `seconds` pass or it has posted `repeats` times."""
    latencies, statuses = [], {}
    stop = time.monotonic() + seconds if seconds else float("inf")
    lock = threading.Lock()

    def client():
        with httpx.Client(base_url=url, timeout=120) as http:
            done = 0
            while time.monotonic() < stop and (repeats is None or done < repeats):
                start = time.perf_counter()
                try:
                    if content_type:
                        response = http.post("/predict", content=files,
                                             headers={"content-type": content_type})
                    else:
                        response = http.post("/predict", files={"file": files})
                    code = response.status_code
                except httpx.HTTPError as e:
                    code = type(e).__name__
                with lock:
                    latencies.append(time.perf_counter() - start)
                    statuses[code] = statuses.get(code, 0) + 1
                done += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _summary(latencies, statuses, time.perf_counter() - began)


def _summary(latencies: list[float], statuses: dict, elapsed: float) -> dict:
    """Requests, their rate, latency percentiles in ms, and the answers that were not 200."""
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    return {"requests": len(latencies), "per_s": len(latencies) / elapsed, "p50_ms": p50,
            "p99_ms": p99, "max_ms": max(latencies) * 1000,
            "errors": len(latencies) - statuses.get(200, 0), "statuses": statuses}


def _client_process(url: str, name: str, data: bytes, start: float, seconds: float) -> list:
    """One client: post from wall-clock `start` for `seconds`; return (latency, status) pairs."""
    time.sleep(max(0.0, start - time.time()))  # every process begins together
    results = []
    with httpx.Client(base_url=url, timeout=120) as http:
        while time.time() < start + seconds:
            began = time.perf_counter()
            try:
                code = http.post("/predict", files={"file": (name, data)}).status_code
            except httpx.HTTPError as e:
                code = type(e).__name__
            results.append((time.perf_counter() - began, code))
    return results


def run_client_processes(url: str, files, clients: int, seconds: float) -> dict:
    """As `run_clients`, each client a process of its own."""
    from concurrent.futures import ProcessPoolExecutor

    start = time.time() + 5  # time for the processes to start
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(clients, mp_context=context) as pool:
        results = [r for done in [pool.submit(_client_process, url, *files, start, seconds)
                                  for _ in range(clients)] for r in done.result()]
    if not results:
        raise SystemExit(f"no answer came back from {url} in {seconds} s")
    statuses = {}
    for _, code in results:
        statuses[code] = statuses.get(code, 0) + 1
    return _summary([latency for latency, _ in results], statuses, seconds)


def probe_health(url: str, stop, times) -> None:
    """Time GET /health every 50 ms until `stop` is set (in its own process: the clients'
    threads share a GIL, and would delay it)."""
    with httpx.Client(base_url=url, timeout=60) as http:
        while not stop.is_set():
            start = time.perf_counter()
            http.get("/health")
            times.append(time.perf_counter() - start)
            time.sleep(0.05)


class HealthProbe:
    def __init__(self, url: str):
        context = multiprocessing.get_context("spawn")
        self.manager = context.Manager()
        self.stop_event, self.times = self.manager.Event(), self.manager.list()
        self.process = context.Process(target=probe_health,
                                       args=(url, self.stop_event, self.times))

    def start(self):
        self.process.start()

    def stop(self) -> dict:
        self.stop_event.set()
        self.process.join(timeout=60)
        times = np.array(list(self.times)) * 1000
        self.manager.shutdown()
        return {"health_n": len(times), "health_p50_ms": float(np.median(times)),
                "health_p99_ms": float(np.percentile(times, 99)),
                "health_max_ms": float(times.max())}


def under_probe(url: str, work) -> dict:
    probe = HealthProbe(url)
    probe.start()
    time.sleep(1)  # the probe's process starts
    result = work()
    return {**result, **probe.stop()}


def chunked_gigabyte(url: str) -> dict:
    """Send up to 1 GB of zeros chunked (no Content-Length) over a raw socket, stopping when the
    server answers; report the status, the seconds and the MiB sent until then."""
    host, port = url.removeprefix("http://").split(":")
    boundary, chunk = "loadtest", bytes(2**20)
    head = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="big.png"\r\nContent-Type: image/png\r\n\r\n').encode()
    start, sent, answer = time.perf_counter(), 0, b""
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(head + b"%x\r\n" % len(part) + part + b"\r\n")
        for _ in range(1024):
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:  # the server closed the connection after answering
                break
            sent += len(chunk)
        else:  # all sent, no answer yet: end the body, as a server may wait for its end
            end = b"\r\n--%s--\r\n" % boundary.encode()
            sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(end), end))
        answer = sock.recv(4096)
    status = answer.split(b" ")[1].decode() if answer.startswith(b"HTTP/") else "no answer"
    return {"status": status, "seconds": time.perf_counter() - start, "mb_sent": sent / 2**20}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "fashion.cli", "serve", "--port", str(port)]
    if model:
        command += ["--model", model]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the server did not start in 180 s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server on loopback (default: start one)")
    parser.add_argument("--model", help="the model the started server loads (default: shipped)")
    parser.add_argument("--seconds", type=float, default=60, help="per steady scenario")
    parser.add_argument("--only", nargs="*", help="scenarios to run (default: all)")
    parser.add_argument("--photo", type=Path, help="the phone photo of the photo scenarios "
                        "(default: the first of tests/fixtures/photos)")
    args = parser.parse_args(argv)
    if args.url and not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        raise SystemExit("load tests run against loopback only")
    process, url = (None, args.url) if args.url else start_server(args.model)
    memory = MemorySampler(process.pid if process else None)
    memory.start()
    jpeg, png28, png7000, batch = make_jpeg(), make_png(28), make_png(7000), make_batch()
    photo_path = args.photo or sorted(PHONE_PHOTOS.glob("*/*.jpg"))[0]
    photo = (photo_path.name, photo_path.read_bytes())
    scenarios = {
        "photo8": lambda: run_client_processes(url, photo, 8, args.seconds),
        "photo32": lambda: run_client_processes(url, photo, 32, args.seconds),
        "jpeg8": lambda: run_clients(url, ("s.jpg", jpeg), 8, args.seconds),
        "png8": lambda: run_clients(url, ("s.png", png28), 8, args.seconds),
        "jpeg32": lambda: run_clients(url, ("s.jpg", jpeg), 32, args.seconds),
        "storm": lambda: under_probe(url, lambda: run_clients(
            url, ("big.png", png7000), 16, repeats=1)),
        "json": lambda: under_probe(url, lambda: run_clients(
            url, batch, 2, repeats=3, content_type="application/json")),
        "chunked": lambda: chunked_gigabyte(url),
    }
    print(f"server {url}; 7000x7000 PNG {len(png7000):,} bytes, JPEG {len(jpeg):,} bytes; "
          f"load before: {os.getloadavg()[0]:.2f}", flush=True)
    try:
        for name in args.only or scenarios:
            since = memory.window()
            result = scenarios[name]()
            peak, cpu = since()
            result["server_peak_rss_mb"] = peak / 2**20
            if "requests" in result:
                result["server_cpu_ms_per_request"] = cpu * 1000 / result["requests"]
            result["server_rss_after_mb"] = memory.rss() / 2**20
            print(name, json.dumps({k: round(v, 1) if isinstance(v, float) else v
                                    for k, v in result.items()}), flush=True)
    finally:
        memory.running = False
        if process:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
