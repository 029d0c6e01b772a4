import pytest

from paperlab.errors import BadInput
from paperlab.library import ids, venues


@pytest.mark.parametrize("raw, expected", [
    ("1503.02531", ("1503.02531", None)),
    ("1503.02531v2", ("1503.02531", 2)),
    ("arXiv:1503.02531", ("1503.02531", None)),
    ("  arxiv:1503.02531v1 ", ("1503.02531", 1)),
    ("https://arxiv.org/abs/1503.02531", ("1503.02531", None)),
    ("http://arxiv.org/abs/1503.02531v3", ("1503.02531", 3)),
    ("https://arxiv.org/pdf/1503.02531v2.pdf", ("1503.02531", 2)),
    ("https://arxiv.org/pdf/2203.08679", ("2203.08679", None)),
    ("arxiv.org/abs/cs/0112017", ("cs/0112017", None)),
    ("cs/0112017", ("cs/0112017", None)),
    ("math.GT/0309136v1", ("math.GT/0309136", 1)),
    ("hep-th/9901001", ("hep-th/9901001", None)),
])
def test_every_pasted_form_parses(raw, expected):
    assert ids.parse(raw) == expected


@pytest.mark.parametrize("raw", ["", "foo", "1503.0253", "1513.02531", "1503.025311", "cs/011201",
                                 "https://example.org/abs/1503.02531", "1503.02531v"])
def test_malformed_ids_are_refused(raw):
    with pytest.raises(BadInput, match="malformed arXiv ID"):
        ids.parse(raw)


@pytest.mark.parametrize("text, venue, year, detail", [
    ("Accepted to CVPR 2021 (Oral)", "CVPR", 2021, "oral"),
    ("Published as a conference paper at ICLR 2015", "ICLR", 2015, None),
    ("Accepted by CVPR2022, fix typo", "CVPR", 2022, None),
    ("NIPS 2014 Deep Learning Workshop", "NeurIPS", 2014, "workshop"),
    ("Advances in Neural Information Processing Systems 30 (NIPS 2017)", "NeurIPS", 2017, None),
    ("In Proceedings of NAACL-HLT 2019", "NAACL", 2019, None),
    ("ACL'20 long paper", "ACL", 2020, None),
    ("Journal of Machine Learning Research 15 (2014)", "JMLR", 2014, None),
    ("ICCVW 2019", "ICCV", 2019, "workshop"),
    ("to appear in IEEE TPAMI", "TPAMI", None, None),
    ("Spotlight at NeurIPS 2020", "NeurIPS", 2020, "spotlight"),
])
def test_venue_detection(text, venue, year, detail):
    assert venues.detect(text) == venues.Detected(venue, year, detail)


@pytest.mark.parametrize("text", ["CoRR abs/1503.02531", "12 pages, 4 figures", "EACL 2021", None, ""])
def test_no_venue_is_invented(text):
    assert venues.detect(text) is None


def test_registry_holds_the_venues_students_meet():
    names = set(venues.registry())
    assert {"NeurIPS", "ICML", "ICLR", "CVPR", "ICCV", "ECCV", "AAAI", "IJCAI", "ACL", "EMNLP", "NAACL", "COLING",
            "KDD", "WACV", "BMVC", "CoRL", "AISTATS", "UAI", "COLT", "JMLR", "TMLR", "TPAMI"} <= names
    assert venues.registry()["NeurIPS"].top_tier and not venues.registry()["BMVC"].top_tier


def test_hand_written_venue_labels():
    assert venues.parse_label("nips2014") == venues.Detected("NeurIPS", 2014, None)
    assert venues.parse_label("NeurIPS 2014 workshop") == venues.Detected("NeurIPS", 2014, "workshop")
    with pytest.raises(BadInput, match="closest: CVPR"):
        venues.parse_label("CPVR 2022")
