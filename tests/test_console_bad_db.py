"""`liqdesk --db BAD` refuses a corrupt or foreign database before the console starts."""

import hashlib
import sqlite3

from engine.cli import main


def digest(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_console_refuses_a_corrupt_or_foreign_db_with_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.db"
    bad.write_bytes(bytes(range(256)) * 64)
    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("create table customers(id int, name text)")
    con.commit()
    con.close()
    for path in (bad, foreign):
        before = digest(path)
        assert main(["--db", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "store error" in err[0]
        assert digest(path) == before
