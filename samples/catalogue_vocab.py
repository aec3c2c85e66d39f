"""Vocabulary of the built-in sample catalogue: invented brands, product types, variants.

Every name here is invented or generic; translations cover English, French, German,
Spanish and Italian (the languages of `LANGUAGES`, in that order).
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("en", "fr", "de", "es", "it")


@dataclass(frozen=True)
class Size:
    """A net quantity, e.g. `Size(100, "g")`; units with an imperial form convert."""

    value: float
    unit: str


@dataclass(frozen=True)
class ProductType:
    """One kind of product and the words retailers use for it."""

    key: str
    names: tuple[str, str, str, str, str]  # per language in LANGUAGES
    title: str  # English title template with {brand} and {variant}
    shelf: str  # retail shelf-label abbreviation of the type
    brands: tuple[str, ...]
    variants: tuple[str, ...]  # keys of VARIANTS
    sizes: tuple[Size, ...]  # empty: the product is sold by count only
    packs: tuple[int, ...]
    facts: tuple[str, ...]  # description sentences; may use {brand} {variant} {size}


# English first, then fr, de, es, it.
VARIANTS: dict[str, tuple[str, str, str, str, str]] = {
    "coconut": ("Coconut", "Noix de coco", "Kokos", "Coco", "Cocco"),
    "sea salt": ("Sea Salt", "Fleur de sel", "Meersalz", "Sal marina", "Sale marino"),
    "almond": ("Almond", "Amande", "Mandel", "Almendra", "Mandorla"),
    "orange": ("Orange", "Orange", "Orange", "Naranja", "Arancia"),
    "mint": ("Mint", "Menthe", "Minze", "Menta", "Menta"),
    "strawberry": ("Strawberry", "Fraise", "Erdbeere", "Fresa", "Fragola"),
    "honey": ("Honey", "Miel", "Honig", "Miel", "Miele"),
    "vanilla": ("Vanilla", "Vanille", "Vanille", "Vainilla", "Vaniglia"),
    "plain": ("Plain", "Nature", "Natur", "Natural", "Bianco"),
    "lemon": ("Lemon", "Citron", "Zitrone", "Limón", "Limone"),
    "jasmine": ("Jasmine", "Jasmin", "Jasmin", "Jazmín", "Gelsomino"),
    "espresso": ("Espresso", "Espresso", "Espresso", "Espresso", "Espresso"),
    "dark roast": (
        "Dark Roast",
        "Torréfaction foncée",
        "Dunkle Röstung",
        "Tueste oscuro",
        "Tostatura scura",
    ),
    "decaf": ("Decaf", "Décaféiné", "Entkoffeiniert", "Descafeinado", "Decaffeinato"),
    "chocolate": ("Chocolate", "Chocolat", "Schoko", "Chocolate", "Cioccolato"),
    "fruit nut": (
        "Fruit & Nut",
        "Fruits et noix",
        "Frucht & Nuss",
        "Frutas y nueces",
        "Frutta e noci",
    ),
    "spaghetti": ("Spaghetti", "Spaghetti", "Spaghetti", "Espaguetis", "Spaghetti"),
    "penne": ("Penne", "Penne", "Penne", "Macarrones penne", "Penne"),
    "fusilli": ("Fusilli", "Fusilli", "Fusilli", "Fusilli", "Fusilli"),
    "classic": ("Classic", "Classique", "Klassisch", "Clásico", "Classico"),
    "organic": ("Organic", "Bio", "Bio", "Ecológico", "Biologico"),
    "unfiltered": (
        "Unfiltered",
        "Non filtrée",
        "Naturtrüb",
        "Sin filtrar",
        "Non filtrato",
    ),
    "anti-dandruff": (
        "Anti-Dandruff",
        "Antipelliculaire",
        "Anti-Schuppen",
        "Anticaspa",
        "Antiforfora",
    ),
    "volume": ("Volume", "Volume", "Volumen", "Volumen", "Volume"),
    "repair": ("Repair", "Réparateur", "Reparatur", "Reparador", "Riparatore"),
    "whitening": ("Whitening", "Blancheur", "Whitening", "Blanqueador", "Sbiancante"),
    "sensitive": ("Sensitive", "Sensible", "Sensitiv", "Sensible", "Sensibile"),
    "lavender": ("Lavender", "Lavande", "Lavendel", "Lavanda", "Lavanda"),
    "color": ("Color", "Couleurs", "Color", "Color", "Colori"),
    "aa": ("AA", "AA", "AA", "AA", "AA"),
    "aaa": ("AAA", "AAA", "AAA", "AAA", "AAA"),
    "c": ("C", "C", "C", "C", "C"),
    "9v": ("9V", "9V", "9V", "9V", "9V"),
    "black": ("Black", "Noir", "Schwarz", "Negro", "Nero"),
    "white": ("White", "Blanc", "Weiß", "Blanco", "Bianco"),
    "grey": ("Grey", "Gris", "Grau", "Gris", "Grigio"),
    "blue": ("Blue", "Bleu", "Blau", "Azul", "Blu"),
}

_FOOD_FACTS = (
    "Best before the date printed on the back of the pack.",
    "Store in a cool, dry place away from direct sunlight.",
    "Produced in a facility that also handles nuts, milk and soy.",
    "Suitable for vegetarians.",
    "Recyclable packaging made from at least 70 % recycled material.",
    "Each {size} pack is sealed for freshness.",
    "{brand} sources its ingredients from audited farms.",
)
_CARE_FACTS = (
    "Dermatologically tested.",
    "Not tested on animals.",
    "Keep out of reach of children.",
    "The {size} bottle is made from recycled plastic.",
    "Free from parabens and microplastics.",
    "{brand} products are developed with pharmacists.",
)
_TECH_FACTS = (
    "Backed by a two-year limited warranty from {brand}.",
    "Compatible with most phones, tablets and laptops.",
    "Tested for safety and certified to CE and FCC standards.",
    "Ships in plastic-free packaging.",
    "Customer support is available in five languages.",
)

PRODUCT_TYPES: tuple[ProductType, ...] = (
    ProductType(
        key="dark chocolate",
        names=(
            "Dark Chocolate",
            "Chocolat noir",
            "Zartbitterschokolade",
            "Chocolate negro",
            "Cioccolato fondente",
        ),
        title="{brand} 70 % Cacao Dark Chocolate With {variant}",
        shelf="DRK CHCLT BAR",
        brands=("Nordvik", "Maison Laurent", "Cacao Verde", "Halvorsen"),
        variants=("coconut", "sea salt", "almond", "orange", "mint"),
        sizes=(Size(100, "g"), Size(200, "g")),
        packs=(1, 4, 10),
        facts=(
            *_FOOD_FACTS,
            "Made with 70 % cacao from single-origin beans and real {variant}.",
            "Ingredients: cocoa mass, sugar, cocoa butter, {variant}, vanilla extract.",
            "A smooth, bittersweet bar that snaps cleanly and melts slowly.",
        ),
    ),
    ProductType(
        key="ground coffee",
        names=(
            "Ground Coffee",
            "Café moulu",
            "Gemahlener Kaffee",
            "Café molido",
            "Caffè macinato",
        ),
        title="{brand} {variant} Ground Coffee",
        shelf="GRND COFF",
        brands=("Aurelio", "Morning Peak", "Kaffeehaus Brenner", "Tostado Real"),
        variants=("espresso", "dark roast", "decaf", "classic"),
        sizes=(Size(250, "g"), Size(500, "g"), Size(1, "kg")),
        packs=(1, 2, 6),
        facts=(
            *_FOOD_FACTS,
            "This {variant} blend of Arabica and Robusta beans, roasted in small batches.",
            "Ground for filter machines, French press and moka pots.",
            "Notes of cocoa, toasted nuts and caramel with a long finish.",
        ),
    ),
    ProductType(
        key="green tea",
        names=("Green Tea", "Thé vert", "Grüner Tee", "Té verde", "Tè verde"),
        title="{brand} Green Tea {variant}",
        shelf="GRN TEA",
        brands=("Jade Garden", "Teehaus Lindner", "Camellia & Co"),
        variants=("jasmine", "mint", "lemon", "plain"),
        sizes=(Size(20, "bags"), Size(50, "bags"), Size(100, "bags")),
        packs=(1, 4),
        facts=(
            *_FOOD_FACTS,
            "Steep one bag in water at 80 degrees for two to three minutes.",
            "Whole-leaf green tea blended with natural {variant}.",
            "Each bag is individually wrapped in an envelope.",
        ),
    ),
    ProductType(
        key="pasta",
        names=("Pasta", "Pâtes", "Nudeln", "Pasta", "Pasta"),
        title="{brand} {variant} Durum Wheat Pasta",
        shelf="PASTA",
        brands=("Fratelli Rossi", "Campo d'Oro", "Nonna Lucia", "Molino Verde"),
        variants=("spaghetti", "penne", "fusilli"),
        sizes=(Size(500, "g"), Size(1, "kg")),
        packs=(1, 3, 12),
        facts=(
            *_FOOD_FACTS,
            "Bronze-die extruded from 100 % durum wheat semolina.",
            "Cook in salted boiling water for 9 to 11 minutes.",
            "Slowly dried at low temperature to keep its texture.",
        ),
    ),
    ProductType(
        key="olive oil",
        names=(
            "Extra Virgin Olive Oil",
            "Huile d'olive vierge extra",
            "Natives Olivenöl extra",
            "Aceite de oliva virgen extra",
            "Olio extravergine di oliva",
        ),
        title="{brand} {variant} Extra Virgin Olive Oil",
        shelf="EV OLV OIL",
        brands=("Oliveto Sereno", "Kalamata Gold", "Sierra Olivar"),
        variants=("classic", "organic", "unfiltered"),
        sizes=(Size(500, "ml"), Size(750, "ml"), Size(1, "l")),
        packs=(1, 2, 6),
        facts=(
            *_FOOD_FACTS,
            "Cold extracted within hours of the harvest.",
            "Fruity and peppery, for dressings, dips and finishing dishes.",
            "Sold in a dark glass bottle that protects the oil from light.",
        ),
    ),
    ProductType(
        key="cereal",
        names=(
            "Breakfast Cereal",
            "Céréales du petit-déjeuner",
            "Frühstücksflocken",
            "Cereales de desayuno",
            "Cereali per la colazione",
        ),
        title="{brand} {variant} Breakfast Cereal",
        shelf="BRKFST CRL",
        brands=("Sunfield", "Crunchwell", "Alpen Morgen"),
        variants=("honey", "chocolate", "fruit nut", "plain"),
        sizes=(Size(375, "g"), Size(750, "g")),
        packs=(1, 4),
        facts=(
            *_FOOD_FACTS,
            "Whole grain oats and wheat flakes baked with {variant}.",
            "High in fibre and a source of iron and B vitamins.",
            "Enjoy with cold milk, yogurt or as a crunchy topping.",
        ),
    ),
    ProductType(
        key="greek yogurt",
        names=(
            "Greek Yogurt",
            "Yaourt à la grecque",
            "Griechischer Joghurt",
            "Yogur griego",
            "Yogurt greco",
        ),
        title="{brand} {variant} Greek Style Yogurt",
        shelf="GRK YGRT",
        brands=("Olympos Dairy", "Bergwiese", "Lacteos Luna"),
        variants=("plain", "strawberry", "honey", "vanilla"),
        sizes=(Size(150, "g"), Size(500, "g")),
        packs=(1, 4, 6),
        facts=(
            *_FOOD_FACTS,
            "Strained three times for a thick, creamy texture.",
            "Made with whole milk and live active cultures.",
            "Keep refrigerated between 2 and 6 degrees.",
        ),
    ),
    ProductType(
        key="shampoo",
        names=("Shampoo", "Shampooing", "Shampoo", "Champú", "Shampoo"),
        title="{brand} {variant} Shampoo",
        shelf="SHMP",
        brands=("Aqualis", "Herbalia", "Dr. Kessler"),
        variants=("anti-dandruff", "volume", "repair", "sensitive"),
        sizes=(Size(250, "ml"), Size(400, "ml")),
        packs=(1, 2, 6),
        facts=(
            *_CARE_FACTS,
            "This {variant} formula for daily use on all hair types.",
            "Massage into wet hair, lather and rinse thoroughly.",
        ),
    ),
    ProductType(
        key="toothpaste",
        names=(
            "Toothpaste",
            "Dentifrice",
            "Zahnpasta",
            "Pasta de dientes",
            "Dentifricio",
        ),
        title="{brand} {variant} Fluoride Toothpaste",
        shelf="TTHPST",
        brands=("Denta Pro", "Smilefresh", "Zahnweiss"),
        variants=("whitening", "sensitive", "mint"),
        sizes=(Size(75, "ml"), Size(125, "ml")),
        packs=(1, 2, 3),
        facts=(
            *_CARE_FACTS,
            "Contains 1450 ppm fluoride to help prevent cavities.",
            "Brush twice a day for two minutes.",
        ),
    ),
    ProductType(
        key="laundry detergent",
        names=(
            "Laundry Detergent",
            "Lessive",
            "Waschmittel",
            "Detergente",
            "Detersivo",
        ),
        title="{brand} {variant} Liquid Laundry Detergent",
        shelf="LNDRY DTRGNT",
        brands=("Clearwave", "Blanche", "Frischwerk"),
        variants=("color", "sensitive", "lavender", "classic"),
        sizes=(Size(1.5, "l"), Size(3, "l")),
        packs=(1, 2, 4),
        facts=(
            *_CARE_FACTS,
            "Effective from 20 degrees to save energy.",
            "One {size} bottle washes up to 60 loads.",
        ),
    ),
    ProductType(
        key="batteries",
        names=(
            "Alkaline Batteries",
            "Piles alcalines",
            "Alkaline-Batterien",
            "Pilas alcalinas",
            "Batterie alcaline",
        ),
        title="{brand} {variant} Alkaline Batteries",
        shelf="ALK BTTRY",
        brands=("Voltaro", "Powercell", "Energon"),
        variants=("aa", "aaa", "c", "9v"),
        sizes=(),
        packs=(4, 8, 12, 24),
        facts=(
            *_TECH_FACTS,
            "Up to ten years of shelf life in storage.",
            "Leak-resistant design for remotes, toys and clocks.",
        ),
    ),
    ProductType(
        key="usb-c cable",
        names=(
            "USB-C Charging Cable",
            "Câble de charge USB-C",
            "USB-C-Ladekabel",
            "Cable de carga USB-C",
            "Cavo di ricarica USB-C",
        ),
        title="{brand} USB-C to USB-C Charging Cable, {variant}",
        shelf="USB-C CBL",
        brands=("Linkstrom", "Cablio", "Voltaro"),
        variants=("black", "white", "grey"),
        sizes=(Size(1, "m"), Size(2, "m")),
        packs=(1, 2, 3),
        facts=(
            *_TECH_FACTS,
            "Supports 60 W fast charging and 480 Mbps data transfer.",
            "Braided {variant} nylon jacket tested for 10000 bends.",
        ),
    ),
    ProductType(
        key="wireless earbuds",
        names=(
            "Wireless Earbuds",
            "Écouteurs sans fil",
            "Kabellose Ohrhörer",
            "Auriculares inalámbricos",
            "Auricolari wireless",
        ),
        title="{brand} Bluetooth Wireless Earbuds, {variant}",
        shelf="WRLS EARBDS",
        brands=("Soundlet", "Akustik", "Audiora"),
        variants=("black", "white", "blue"),
        sizes=(),
        packs=(1,),
        facts=(
            *_TECH_FACTS,
            "Up to 30 hours of playback with the charging case.",
            "Active noise cancellation and two microphones per earbud.",
            "IPX4 sweat and splash resistant.",
        ),
    ),
)
