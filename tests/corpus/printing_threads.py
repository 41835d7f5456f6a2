"""Eight threads each print 20,000 lines at once: 160,000 lines, none lost, none doubled."""

import threading


def shout(n: int) -> None:
    for i in range(20_000):
        print(f"thread {n} line {i}")


threads = [threading.Thread(target=shout, args=(n,)) for n in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
