#!/usr/bin/env python3
"""Derives the vendored token lists of metadata/tokens/ from their published sources.

Only the fields the bundle needs are kept (chainId, address, symbol, decimals, name), in
the token-list layout the bundle tool reads, sorted by chain and lowercase address, one
token a line. Standard library only; reads local files, fetches nothing.

  derive.py ledger   PACKAGE_DIR  OUT   # @ledgerhq/cryptoassets: lib/data/evm/*/erc20.json
  derive.py tokenlist FILE        OUT   # a Uniswap-format token list (e.g. Optimism's)
  derive.py metamask CONTRACT_MAP OUT   # @metamask/contract-metadata: contract-map.json

Ledger entries marked delisted are left out. MetaMask entries are chain 1 (the file has no
chain) and only those marked erc20 with decimals and a symbol.
"""

import glob
import json
import os
import sys


def ledger(package_dir):
    out = []
    for path in glob.glob(os.path.join(package_dir, "lib/data/evm/*/erc20.json")):
        chain = int(os.path.basename(os.path.dirname(path)))
        with open(path, encoding="utf-8") as f:
            for t in json.load(f):
                # [parent, id, ticker, decimals, name, signature, address, noCv, delisted, ...]
                if len(t) < 9 or t[8]:
                    continue
                out.append((chain, t[6], t[2], t[3], t[4]))
    return out


def tokenlist(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return [
        (t["chainId"], t["address"], t["symbol"], t["decimals"], t["name"])
        for t in data["tokens"]
    ]


def metamask(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return [
        (1, addr, v["symbol"], v["decimals"], v.get("name", v["symbol"]))
        for addr, v in data.items()
        if v.get("erc20") and "decimals" in v and "symbol" in v
    ]


def write(tokens, out):
    rows = sorted(
        {(c, a.lower()): (c, a, s, d, n) for c, a, s, d, n in tokens}.values(),
        key=lambda t: (t[0], t[1].lower()),
    )
    lines = [
        json.dumps(
            {"chainId": c, "address": a, "symbol": s, "decimals": d, "name": n},
            ensure_ascii=False,
        )
        for c, a, s, d, n in rows
    ]
    with open(out, "w", encoding="utf-8") as f:
        f.write('{"tokens": [\n' + ",\n".join(lines) + "\n]}\n")
    print(f"{out}: {len(rows)} tokens")


if __name__ == "__main__":
    kind, src, dst = sys.argv[1:4]
    write({"ledger": ledger, "tokenlist": tokenlist, "metamask": metamask}[kind](src), dst)
