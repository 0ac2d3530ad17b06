"""`python -m fivecogs_ops.lag lag|ops`: the two commands on their own, as `fivecogs lag|ops` runs them."""

import typer

from fivecogs_ops.lag.cli import register

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Consumer lag and the operators' page.")
register(app)

if __name__ == "__main__":
    app()
