import org.jetbrains.kotlin.gradle.dsl.JvmTarget

// Pure JVM: no Android APIs, so the engine runs (and is tested) on any JVM and drops into any app.
// The sources also compile with kotlinc 1.3, which the project's Linux CI uses to test them
// (tests/test_android_sample.py); keep them free of newer language features.
plugins {
    alias(libs.plugins.kotlin.jvm)
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}
