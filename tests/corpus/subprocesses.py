"""asyncio subprocesses and their streams."""

import asyncio
import sys

CHILD = "import sys, time; time.sleep({}); print('child says hi'); sys.exit(3)"
ECHO = "import sys; [print(line.strip().upper(), flush=True) for line in sys.stdin]"


async def run_and_communicate() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD.format(0.05), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    print("communicate:", out.decode().strip(), proc.returncode)


async def run_and_wait() -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD.format(0.2))
    code = await proc.wait()
    print("wait:", code)


async def talk_over_streams() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ECHO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    for word in ("one", "two"):
        proc.stdin.write(f"{word}\n".encode())
        await proc.stdin.drain()
        line = await proc.stdout.readline()
        print("echo:", line.decode().strip())
    proc.stdin.close()
    await proc.wait()


async def main() -> None:
    await asyncio.gather(run_and_communicate(), run_and_wait())
    await talk_over_streams()


asyncio.run(main())
