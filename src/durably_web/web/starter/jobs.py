"""The app's jobs. The engine (Pyodide, in a Web Worker of the page) imports this file.

A job is an async function made of named steps. When a step finishes, its result is stored
in the browser's database (SQLite on OPFS); after a reload, a closed tab or a crash, the run
starts again from the top, finished steps return their stored result without running again,
and the work goes on from the first unfinished step.

The page reaches each job as ``durably.jobs.<variable name>``: ``durably.jobs.count_primes``
below. ``name=`` is what runs record as their ``job_name``.
"""

from pydantic import BaseModel, Field

from durably_web import StepContext, define_job


class CountInput(BaseModel):
    """Count the primes below ``limit``, in ``chunks`` checkpointed steps."""

    limit: int = Field(2_000_000, ge=2, le=100_000_000)
    chunks: int = Field(20, ge=1, le=1_000)


class CountOutput(BaseModel):
    """What the count found."""

    limit: int
    primes: int
    largest: int | None


def primes_between(start: int, stop: int) -> dict[str, int | None]:
    """Count the primes in ``[start, stop)`` (a segmented sieve); also return the largest."""
    start = max(start, 2)
    if stop <= start:
        return {"count": 0, "largest": None}
    is_prime = bytearray([1]) * (stop - start)
    factor = 2
    while factor * factor < stop:
        first = max(factor * factor, (start + factor - 1) // factor * factor)
        is_prime[first - start :: factor] = bytes(len(range(first, stop, factor)))
        factor += 1
    largest = next((start + i for i in range(len(is_prime) - 1, -1, -1) if is_prime[i]), None)
    return {"count": sum(is_prime), "largest": largest}


@define_job(name="count-primes", input=CountInput, output=CountOutput)
async def count_primes(step: StepContext, payload: CountInput) -> CountOutput:
    """Sieve one chunk per step, reporting progress after each."""
    size = -(-payload.limit // payload.chunks)  # ceil: the chunks cover [0, limit)
    primes, largest = 0, None
    for chunk in range(payload.chunks):
        start, stop = chunk * size, min((chunk + 1) * size, payload.limit)
        found = await step.run(f"chunk-{chunk}", lambda a=start, b=stop: primes_between(a, b))
        primes += found["count"]
        largest = found["largest"] or largest
        step.progress(chunk + 1, payload.chunks, f"{primes:,} primes below {stop:,}")
    step.log.info("counted", {"limit": payload.limit, "primes": primes})
    return CountOutput(limit=payload.limit, primes=primes, largest=largest)
