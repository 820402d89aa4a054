package com.a2bs.sample

import android.content.res.AssetManager
import com.a2bs.engine.A2BSManifest
import com.a2bs.engine.WavAudio
import com.a2bs.engine.WavReader
import java.io.FileInputStream
import java.io.FileNotFoundException
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/**
 * Where `a2bs-convert android --install-into android_sample` puts the bundle: `bundle_dir` of
 * a2bs-sample.json is app/src/main/assets/ + [BUNDLE_ASSET_DIR] (the project's tests check both agree).
 */
const val BUNDLE_ASSET_DIR = "a2bs"
const val MANIFEST_FILE = "manifest.json"
const val CLIP_FILE = "sample_clip.wav"

/** Reads the installed bundle out of the APK's assets. */
class BundleAssets(private val assets: AssetManager) {
    private fun asset(name: String) = "$BUNDLE_ASSET_DIR/$name"

    fun manifest(): A2BSManifest {
        val text = try {
            assets.open(asset(MANIFEST_FILE)).bufferedReader().use { it.readText() }
        } catch (e: FileNotFoundException) {
            throw IllegalStateException(
                "No a2bs bundle in the app's assets ($BUNDLE_ASSET_DIR/$MANIFEST_FILE). " +
                    "Run: a2bs-convert android --install-into android_sample", e
            )
        }
        return A2BSManifest.parse(text)
    }

    /** Memory-maps a model file (stored uncompressed: `noCompress += "tflite"`), no copy on the Java heap. */
    fun mapModel(path: String): MappedByteBuffer =
        assets.openFd(asset(path)).use { fd ->
            FileInputStream(fd.fileDescriptor).use { stream ->
                stream.channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
            }
        }

    fun sampleClip(): WavAudio = assets.open(asset(CLIP_FILE)).use { WavReader.read(it) }
}
