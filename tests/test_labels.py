import pytest

from affect_keras.labels import SCHEMES, code_of_folder, get_scheme


def test_affectnet8_keeps_codes_0_to_7_in_code_order():
    scheme = get_scheme("affectnet8")
    assert scheme.class_names == ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
    assert [scheme.class_of(c) for c in (7, 8, 9, 10)] == ["Contempt", None, None, None]


def test_affectnet7_drops_contempt_and_merge_folds_high_codes_into_neutral():
    assert get_scheme("affectnet7").class_of(7) is None
    merge = get_scheme("affectnet7-merge")
    assert len(merge.class_names) == 7
    assert {merge.class_of(c) for c in (0, 7, 8, 9, 10)} == {"Neutral"}


def test_affectnet11_and_polarity3():
    assert get_scheme("affectnet11").class_of(10) == "NonFace"
    polarity = get_scheme("polarity3")
    assert [polarity.class_of(c) for c in range(9)] == [
        "Neutral",
        "Positive",
        "Negative",
        "Positive",
        "Negative",
        "Negative",
        "Negative",
        "Negative",
        None,
    ]


def test_every_scheme_maps_only_into_its_own_classes():
    for scheme in SCHEMES.values():
        assert set(scheme.code_to_class.values()) == set(scheme.class_names)


def test_unknown_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown label scheme 'affectnet9'"):
        get_scheme("affectnet9")


def test_folder_names_from_other_datasets():
    assert code_of_folder("happiness") == 1
    assert code_of_folder("Angry") == 6
    assert code_of_folder("3") == 3
    assert code_of_folder("joy") is None
    assert code_of_folder("joy", {"joy": "Happy"}) == 1
