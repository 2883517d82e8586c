import json

from edgeprune.cli import main


def test_inspect_space_lists_genes_and_size(capsys):
    assert main(["inspect", "resnet20", "--space", "--target", "host-cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    genes = {g["name"]: g for g in out["space"]["genes"]}
    assert genes["depth:layer1"]["levels"] == "0,1,2,3"
    assert genes["keep:layer3.0.conv1"]["levels"] == "16,32,48,64"
    sizes = [len(g["levels"].split(",")) for g in out["space"]["genes"]]
    product = 1
    for s in sizes:
        product *= s
    assert out["space"]["size"] == product


def test_inspect_space_with_rank_genes(capsys):
    assert main(["inspect", "resnet20", "--space", "--rank-genes", "--target", "host-cpu", "--json"]) == 0
    genes = {g["name"]: g for g in json.loads(capsys.readouterr().out)["space"]["genes"]}
    assert genes["rank:layer3.1.conv1"]["levels"] == "16,32,unfactorised"
    assert not any(name.startswith("rank:layer1.") for name in genes)  # 16-wide convs: no saving rank
