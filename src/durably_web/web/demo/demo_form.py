"""The demo's words: a refused input next to the fields at fault, an output as a sentence.

Plain Python (no ``js``): tested on CPython (``tests/unit/test_demo_words.py``), run under
MicroPython or Pyodide on the page.
"""

FIELDS = {
    "rows": "rows",
    "batch_size": "batch",
    "delay_ms": "delay",
    "csv": "file",
    "filename": "file",
    "fail_at_batch": "fail",
}
"""The form field (its element id) of each input field of the import job."""

_PLAIN = (
    ("Input should be greater than or equal to ", "must be at least "),
    ("Input should be less than or equal to ", "must be at most "),
    ("Input should be greater than ", "must be more than "),
    (
        "Input should be a valid integer, unable to parse string as an integer",
        "must be a whole number",
    ),
    ("Input should be a valid integer", "must be a whole number"),
    ("String should have at most ", "must have at most "),
    ("Value error, ", ""),
)


def field_errors(message):
    """Return ``[(element_id, text)]`` for a refused input's message (the engine's words).

    The engine says ``Invalid input for job 'x': field: problem; field: problem``; a problem
    of the whole input (``value: ...``) goes to the field it is about: the file when it names
    the CSV, else the rows. A message of another shape is returned whole, for the form.
    """
    head, sep, rest = message.partition("': ")
    if not sep or not head.startswith("Invalid input for job"):
        return [("form", message)]
    found = []
    for part in rest.split("; "):
        name, _, problem = part.partition(": ")
        for engine_words, plain in _PLAIN:
            problem = problem.replace(engine_words, plain)
        if name in FIELDS:
            found.append((FIELDS[name], problem))
        elif "the CSV" in problem:
            found.append(("file", problem))
        elif name == "value":
            found.append(("rows", problem))
        else:
            found.append(("form", name + ": " + problem))
    return found


def thousands(number):
    """Return an int with thousands separators (MicroPython has no ``{:,}``)."""
    digits = str(abs(int(number)))
    groups = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return ("-" if number < 0 else "") + ",".join(groups or ["0"])


def output_text(output):
    """Return an import's output as a sentence: ``500 rows imported in 10 batches, ...``."""
    if output is None:
        return ""
    rows, batches = output.get("rows"), output.get("batches")
    if rows is None:
        return str(output)
    amount = output.get("total_amount") or 0
    cents = round(abs(amount) * 100) % 100
    total = thousands(int(amount)) + "." + ("0" if cents < 10 else "") + str(cents)
    rows_noun = " row" if rows == 1 else " rows"
    noun = " batch" if batches == 1 else " batches"
    return thousands(rows) + rows_noun + " imported in " + str(batches) + noun + ", total " + total
