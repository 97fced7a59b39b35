# Cases for `semgrep --test .semgrep`: each rule must flag what it is for and nothing else.
# This file is never imported or run.
# ruff: noqa
import os
import pickle
import random
import secrets
import ssl
import subprocess

import httpx
import joblib
import jwt
import sqlalchemy
import yaml
from sqlalchemy import text


def tls(url, ctx):
    # ruleid: assay-tls-verification-off
    httpx.get(url, verify=False)
    # ruleid: assay-tls-verification-off
    httpx.AsyncClient(timeout=5, verify=False)
    # ruleid: assay-tls-verification-off
    ssl._create_unverified_context()
    # ruleid: assay-tls-verification-off
    ctx.check_hostname = False
    # ok: assay-tls-verification-off
    httpx.get(url, verify=True)


async def sql(db, name):
    # ruleid: assay-string-built-sql
    text(f"SELECT * FROM users WHERE name = '{name}'")
    # ruleid: assay-string-built-sql
    sqlalchemy.text("SELECT * FROM users WHERE name = '%s'" % name)
    # ruleid: assay-string-built-sql
    text("SELECT * FROM users WHERE name = " + name)
    # ruleid: assay-string-built-sql
    await db.execute(f"DELETE FROM users WHERE name = '{name}'")
    # ok: assay-string-built-sql
    text("SELECT * FROM users WHERE name = :name").bindparams(name=name)


def deserialise(data, stream):
    # ruleid: assay-unsafe-deserialisation
    pickle.loads(data)
    # ruleid: assay-unsafe-deserialisation
    joblib.load(stream)
    # ruleid: assay-unsafe-deserialisation
    yaml.load(stream, Loader=yaml.Loader)
    # ruleid: assay-unsafe-deserialisation
    yaml.unsafe_load(stream)
    # ok: assay-unsafe-deserialisation
    yaml.safe_load(stream)


def tokens(token, key):
    # ruleid: assay-unverified-jwt
    jwt.decode(token, key, options={"verify_signature": False})
    # ruleid: assay-unverified-jwt
    jwt.decode(token, key, algorithms=["none"])
    # ok: assay-unverified-jwt
    jwt.decode(token, key, algorithms=["EdDSA"])


def commands(name):
    # ruleid: assay-shell-command
    subprocess.run(f"pg_dump {name}", shell=True)
    # ruleid: assay-shell-command
    os.system("pg_dump " + name)
    # ok: assay-shell-command
    subprocess.run(["pg_dump", name], check=True)


def new_reset_token():
    # ruleid: assay-insecure-randomness
    return random.getrandbits(128)


def new_backup_code():
    # ok: assay-insecure-randomness
    return secrets.token_hex(5)


def jitter(delay):
    # ok: assay-insecure-randomness
    return delay * random.random()
