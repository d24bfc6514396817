import pytest
import torch

from text_recognizer.metadata.charset import CHARSET
from text_recognizer.tokenizer import OutOfCharsetError, Tokenizer


def test_round_trip_covers_the_whole_charset_and_newlines() -> None:
    tokenizer = Tokenizer()
    text = CHARSET + "\n" + "A line & another: (it's) #1?"
    encoded = tokenizer.encode(text)
    assert encoded[0] == tokenizer.start_index
    assert encoded[-1] == tokenizer.end_index
    assert tokenizer.decode(encoded) == text


def test_padding_and_decode_stop_at_the_end_token() -> None:
    tokenizer = Tokenizer()
    encoded = tokenizer.encode("hello", max_length=10)
    assert encoded.tolist()[-3:] == [tokenizer.pad_index] * 3
    garbage_after_end = torch.cat([encoded[:7], torch.tensor([tokenizer.tokens.index("x")] * 3)])
    assert tokenizer.decode(garbage_after_end) == "hello"


def test_specials_come_first_with_pad_zero() -> None:
    tokenizer = Tokenizer()
    assert tokenizer.pad_index == 0
    assert (tokenizer.start_index, tokenizer.end_index, tokenizer.newline_index) == (1, 2, 3)
    assert len(tokenizer) == 4 + len(CHARSET) == 83


def test_out_of_charset_error_names_character_and_position() -> None:
    with pytest.raises(OutOfCharsetError, match=r"'é' at position 4"):
        Tokenizer().encode("cafeé")


def test_text_is_read_character_by_character_never_as_a_special_token() -> None:
    """ "<p>" in a text is three characters, not the pad token: only a character of the charset
    (or the newline) is a token of a text."""
    assert Tokenizer().unsupported("a<p>b") == {"<", ">"}
    with pytest.raises(OutOfCharsetError, match=r"'<' at position 1"):
        Tokenizer().encode("a<p>b")
    tokenizer = Tokenizer("<p>ab")
    encoded = tokenizer.encode("a<p>b").tolist()
    assert tokenizer.pad_index not in encoded and len(encoded) == 2 + 5
    assert tokenizer.decode(encoded) == "a<p>b" and not tokenizer.unsupported("a<p>b\n")


def test_too_long_text_is_refused() -> None:
    with pytest.raises(ValueError, match="max_length=4"):
        Tokenizer().encode("hello", max_length=4)


def test_a_charset_from_data_keeps_its_normalisation_and_table_in_the_checkpoint() -> None:
    from text_recognizer.spec import InferenceSpec
    from text_recognizer.tokenizer import charset_of, normalize_text

    mapping = {"ſ": "s", "½": "1/2", "#": ""}
    labels = [normalize_text(t, "NFC", mapping) for t in ["Cafe\u0301 ſo", "½ #1", "ß"]]
    assert labels == ["Café so", "1/2 1", "ß"]
    charset, rare = charset_of(labels, min_count=2)
    assert charset == " 1" and rare == dict.fromkeys("Café/soß2", 1)
    tokenizer = Tokenizer("".join(sorted(set("".join(labels)))), "NFC", mapping)
    spec = InferenceSpec({}, tokenizer.charset, {}, None, "NFC", mapping)
    again = InferenceSpec.from_dict(
        spec.to_dict() | {"transform": _transform()}, "ckpt"
    ).tokenizer()
    assert again.params() == tokenizer.params()
    assert again.decode(again.encode(again.normalize("Cafe\u0301 ſo"))) == "Café so"
    with pytest.raises(ValueError, match="normalization must be one of NFC"):
        Tokenizer(CHARSET, "nfc")


def _transform() -> dict[str, object]:
    return {"height": 32, "width": 640, "crop_width": True, "resize": "height"}
