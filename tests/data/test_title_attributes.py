"""Title rules (data/title_rules/games.yaml) and the engine that applies them."""

from __future__ import annotations

import pandas as pd
import pytest

from instructrec.data import DataError
from instructrec.data.title_attributes import apply_title_rules, load_title_rules, packaged_rules


@pytest.fixture(scope="module")
def rules():
    return load_title_rules(packaged_rules("games"))


def attrs(rules, titles):
    items = pd.DataFrame({"item_id": [str(k) for k in range(len(titles))], "title": titles})
    return apply_title_rules(items, rules)


@pytest.mark.parametrize(
    ("title", "platform"),
    [
        ("Call of Duty: Black Ops - Xbox 360", "Xbox 360"),
        ("Halo 5 - Xbox One", "Xbox One"),
        ("Full Spectrum Warrior - Xbox", "Xbox"),
        ("Destiny - PlayStation 4", "PlayStation 4"),
        ("Resistance - Playstation 3", "PlayStation 3"),
        ("Ps3 Call of Duty 4 Modern Warfare", "PlayStation 3"),
        ("Okami - PlayStation 2", "PlayStation 2"),
        ("Memory Card: Gray - PlayStation", "PlayStation"),
        ("Killzone: Liberation - Sony PSP", "PSP"),
        ("Persona 4 Golden - PlayStation Vita", "PlayStation Vita"),
        ("Madden NFL 08 - Nintendo DS", "Nintendo DS"),
        ("Nintendo 3DS Game Card Case 24 - Clear", "Nintendo 3DS"),
        ("Monster Lab - Nintendo Wii", "Wii"),
        ("Deus Ex Human Revolution: Director's Cut - Nintendo Wii U", "Wii U"),
        ("Resident Evil 3: Nemesis - Gamecube", "GameCube"),
        ("Mario Tennis - Nintendo 64", "Nintendo 64"),
        ("GBA 6-Pak Care Case - Game Boy Advance", "Game Boy Advance"),
        ("Super Mario Bros. Deluxe (Gameboy Color)", "Game Boy Color"),
        ("The Death and Return of Superman - Nintendo Super NES", "Super NES"),
        ("Dragon Warrior II - Nintendo NES", "NES"),
        ("General Chaos - Sega Genesis", "Sega Genesis"),
        ("Zelda: Breath of the Wild - Nintendo Switch", "Nintendo Switch"),
        ("Planescape: Torment - PC", "PC"),
        ("Myst - Mac", "Mac"),
        ("Civilization V - PC/Mac", "PC"),  # the earliest platform of the last " - " part
        ("Xbox 360 Wireless Controller - Black", "Xbox 360"),  # no platform in the tail
        ("Tomba!", None),
    ],
)
def test_platform(rules, title, platform):
    got = attrs(rules, [title])["category"].iloc[0]
    assert (got if isinstance(got, str) else None) == platform


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        ("Xbox 360 Wireless Controller - Black", "accessory"),
        ("GBA 6-Pak Care Case - Game Boy Advance", "accessory"),
        ("Nyko Universal Power Cord - Replacement Power Cord for PlayStation 4", "accessory"),
        ("Xbox 360 Headset", "accessory"),
        ("Mad Catz Pro Racing Force Feedback Wheel and Pedals - Xbox One", "accessory"),
        ("Memory Card: Gray - PlayStation", "accessory"),
        ("Sega Game Gear handheld video game console", "accessory"),
        ("Mario - Gold amiibo (Super Smash Bros Series)", "accessory"),
        ("PC (Jewel case)", "game"),  # an exception listed before the accessory words
        ("SpongeBob Squarepants: Lights, Camera, Pants - PlayStation 2", "game"),
        ("Call of Duty: Black Ops - Xbox 360", "game"),
        ("Standard Edition - PC", "game"),  # "stand" is a word, not a prefix
    ],
)
def test_kind(rules, title, kind):
    assert attrs(rules, [title])["kind"].iloc[0] == kind


@pytest.mark.parametrize(
    ("title", "genres"),
    [
        ("Need for Speed: The Run - PC", ("racing",)),
        ("Madden NFL 08 - Nintendo DS", ("sports",)),
        ("Call of Duty: Black Ops - Xbox 360", ("shooter",)),
        ("Final Fantasy XII - PlayStation 2", ("role-playing",)),
        ("Tetris DS", ("puzzle",)),
        ("Street Fighter IV - Xbox 360", ("fighting",)),
        ("LEGO Batman - Wii", ("family",)),
        ("Guitar Hero III - PlayStation 3", ("music",)),
        ("Age of Empires III - PC", ("strategy",)),
        ("Tomba!", ()),
        ("Logitech G920 Racing Wheel - Xbox One", ()),  # accessories get no genre
    ],
)
def test_genre(rules, title, genres):
    assert attrs(rules, [title])["genres"].iloc[0] == genres


def test_franchise_needs_three_games_sharing_a_stem(rules):
    titles = [
        "Call of Duty: Black Ops - Xbox 360",
        "Call of Duty 4: Modern Warfare - PC",
        "Call of Duty - Ghosts - PlayStation 4",
        "Halo 3 - Xbox 360",
        "Halo: Reach - Xbox 360",
        "The Sims 2 - PC",
        "The Sims 3 - PC",
        "Sims Medieval - PC",
        "Sims: Pets - PC",  # the key ignores a leading "the"; the spelling is the commonest
        "Call of Duty Controller - Xbox 360",  # an accessory: no franchise
    ]
    out = attrs(rules, titles)["brand"].tolist()
    assert out[:3] == ["Call of Duty"] * 3
    assert out[3:5] == [None, None]  # only two Halo games here
    assert out[5] == out[6] == out[8] == "The Sims"
    assert out[7] is None  # "Sims Medieval" is its own stem
    assert out[9] is None


def test_domain_words(rules):
    assert rules.domain == {
        "noun": "game",
        "verbs": ["played", "play"],
        "brand_phrase": "from the {} series",
    }


def test_bad_rules_name_file_and_key(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("attributes:\n  platform:\n    values:\n      PC: ['PC']\n")
    with pytest.raises(DataError, match=r"r.yaml, column 'attributes.platform.values.PC'.*lower"):
        load_title_rules(p)
    p.write_text("attributes:\n  platform:\n    values:\n      PC: ['(pc']\n")
    with pytest.raises(DataError, match="bad regex"):
        load_title_rules(p)
    p.write_text("attributes:\n  platform:\n    mode: best\n    values:\n      PC: ['pc']\n")
    with pytest.raises(DataError, match="mode must be one of"):
        load_title_rules(p)
    p.write_text("platforms: {}\n")
    with pytest.raises(DataError, match="unknown section"):
        load_title_rules(p)
