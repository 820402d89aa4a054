// Names (not numbers) the Swift code relies on, from the bundle contract in manifest.json. Kept in one place:
// tests/test_ios_sample.py parses this file and checks every value against a freshly built bundle.

public enum A2BSContract {
    public static let manifestFile = "manifest.json"
    public static let bundleFormat = "a2bs-bundle"
    public static let formatVersion = 1
    public static let platform = "ios"
    public static let float32 = "float32"

    /// `files[].role` values.
    public static let frontEndRole = "front_end"
    public static let stepRole = "step"

    /// Model inputs and outputs by position. The engine feeds the names the manifest gives, in this order
    /// of meaning, and refuses a bundle whose order differs (`A2BSManifest.validate`).
    public static let frontEndInputs = ["pcm"]
    public static let frontEndOutputs = ["mel"]
    public static let stepInputs = ["mel_frames", "context", "emotion", "previous"]
    public static let stepOutputs = ["blendshapes", "blendshapes_raw", "context_frame"]

    /// Display order of `blendshape_groups` (a JSON object, whose order JSONDecoder does not keep).
    public static let groupOrder = ["jaw", "mouth", "eyes", "brows", "cheeks_nose"]
}
