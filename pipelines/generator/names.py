"""Name pools for generated divisions and candidates (Azerbaijani regions, given names, surnames)."""

from __future__ import annotations

# 66 first-level units (rayons and cities); Baku first so its stations fill the low constituency numbers,
# as in reality (Nasimi-Sabail is constituency 23).
REGIONS: tuple[str, ...] = (
    "Baku", "Absheron", "Ganja", "Imishli", "Gakh", "Sumgait", "Mingachevir", "Shirvan", "Lankaran", "Sheki",
    "Naftalan", "Yevlakh", "Agdash", "Agjabadi", "Agstafa", "Agsu", "Astara", "Balakan", "Barda", "Beylagan",
    "Bilasuvar", "Dashkasan", "Fuzuli", "Gadabay", "Gabala", "Gobustan", "Goranboy", "Goychay", "Goygol",
    "Hajigabul", "Ismayilli", "Jalilabad", "Kurdamir", "Lerik", "Masally", "Neftchala", "Oghuz", "Gazakh",
    "Guba", "Gusar", "Saatly", "Sabirabad", "Salyan", "Samukh", "Shabran", "Shamakhi", "Shamkir", "Siyazan",
    "Tartar", "Tovuz", "Ujar", "Yardimli", "Zagatala", "Zardab", "Khachmaz", "Khizi", "Aghdam", "Lachin",
    "Sharur", "Shahbuz", "Ordubad", "Julfa", "Kangarli", "Sadarak", "Babek", "Nakhchivan",
)
BAKU_SETTLEMENTS: tuple[str, ...] = (
    "Bilgah", "Mardakan", "Buzovna", "Mashtaga", "Nardaran", "Pirshagi", "Zabrat", "Sabunchu", "Bakikhanov",
    "Balakhani", "Ramana", "Binagadi", "Lokbatan", "Garadagh", "Sahil", "Sangachal", "Surakhani", "Hovsan",
    "Gala", "Turkan", "Zira", "Shuvalan", "Amirjan", "Bina", "Novkhani", "Yasamal", "Narimanov", "Nizami",
    "Khatai", "Khazar", "Pirallahi", "Masazir", "Badamdar", "Bayil", "Shikhov", "Gobu", "Mehdiabad", "Digah",
    "Fatmai", "Goradil", "Jeyranbatan", "Hokmali", "Saray", "Nasimi", "Sabail", "Kurdakhani", "Bulbula",
    "Dyubendi", "Gurgan", "Kuhna", "Shagan", "Zigh",
)
FEMALE_GIVEN: tuple[str, ...] = (
    "Aygun", "Leyla", "Gunel", "Sevinj", "Nigar", "Aysel", "Lala", "Sabina", "Ulviyya", "Konul", "Narmin",
    "Gulnar", "Shahla", "Rena", "Aynur", "Fidan", "Samira", "Jamila", "Turkan", "Zarifa",
)
MALE_GIVEN: tuple[str, ...] = (
    "Elvin", "Rashad", "Tural", "Orkhan", "Farid", "Anar", "Ilgar", "Vugar", "Elchin", "Ramil", "Kamran",
    "Nijat", "Samir", "Emil", "Ruslan", "Mahir", "Rauf", "Zaur", "Javid", "Tofig",
)
SURNAMES: tuple[str, ...] = (
    "Mammadov", "Aliyev", "Huseynov", "Hasanov", "Guliyev", "Ismayilov", "Abbasov", "Babayev", "Rzayev",
    "Jafarov", "Karimov", "Mustafayev", "Najafov", "Orujov", "Sadigov", "Veliyev", "Zeynalov", "Askarov",
    "Bagirov", "Gasimov", "Ibrahimov", "Mirzayev", "Nasirov", "Rahimov", "Salimov",
)


def person_name(female: bool, index: int) -> str:
    """A deterministic, plausible Azerbaijani name for candidate number ``index``."""
    given = (FEMALE_GIVEN if female else MALE_GIVEN)[index % 20]
    surname = SURNAMES[(index // 20) % len(SURNAMES)]
    # Surnames take the feminine -a ending (Mammadov -> Mammadova).
    return f"{given} {surname}{'a' if female else ''}"
